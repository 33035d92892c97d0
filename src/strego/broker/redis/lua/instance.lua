-- Keep this process's hold on its consumer name (see presence.py): refresh the token's
-- expiry if it is still ours; take it again if it expired (Redis was unreachable for
-- longer than its ttl and nobody took the name meanwhile).
-- KEYS: 1 instance key
-- ARGV: 1 our token  2 ttl ms
-- Returns 1 refreshed, 2 taken again, 0 held by another process (the value is returned
-- as a second element so the caller can say who).
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, ''}
end
if not held then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {2, ''}
end
return {0, held}
