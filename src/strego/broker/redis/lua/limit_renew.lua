-- Renew the leases of concurrency slots a live worker holds (with its task leases),
-- so a long handler keeps its slot; a slot that already expired is not taken again.
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: 1 lease ms, then members
-- Returns how many were renewed.
local now = lim_now()
local renewed = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[LK.holders], ARGV[i]) then
    redis.call('ZADD', KEYS[LK.holders], now + tonumber(ARGV[1]), ARGV[i])
    renewed = renewed + 1
  end
end
lim_expire(KEYS, 1, now, now + tonumber(ARGV[1]))
return renewed
