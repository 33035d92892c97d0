-- Renew the leases of concurrency slots a live worker holds (with its task leases),
-- so a long handler keeps its slot; a slot that already expired is not taken again.
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: 1 lease ms, then members
-- Returns the members that were not held any more (expired, or the keys deleted).
local now = lim_now()
local lost = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[LK.holders], ARGV[i]) then
    redis.call('ZADD', KEYS[LK.holders], now + tonumber(ARGV[1]), ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
lim_expire(KEYS, 1, now, now + tonumber(ARGV[1]))
return lost
