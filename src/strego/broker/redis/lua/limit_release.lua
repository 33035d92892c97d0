-- Free concurrency slots of one limiter key (a task's outcome, whatever it was) and
-- fold their hold times into the mean the wait estimate uses.
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: 1 '1' when the handlers ran (their hold times count), '0' when the slots are
--       given back before a start (another limit said wait: not a hold time),
--       then members ('<queue>|<entry id>|<delivery count>')
-- Returns how many slots were held (a slot that expired meanwhile is not).
local now = lim_now()
local state, holders, acquired = KEYS[LK.state], KEYS[LK.holders], KEYS[LK.acquired]
local freed = 0
for i = 2, #ARGV do
  local member = ARGV[i]
  local at = tonumber(redis.call('HGET', acquired, member))
  if at and ARGV[1] == '1' then
    local mean = lim_num(state, 'd')
    local hold = math.max(0, now - at)
    if mean then hold = mean * 0.8 + hold * 0.2 end
    redis.call('HSET', state, 'd', lim_fmt(hold))
  end
  freed = freed + redis.call('ZREM', holders, member)
  redis.call('HDEL', acquired, member)
end
return freed
