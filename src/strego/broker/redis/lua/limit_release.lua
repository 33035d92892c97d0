-- Free concurrency slots of one limiter key (a task's outcome, whatever it was) and
-- fold their hold times into the mean the wait estimate uses.
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: members ('<queue>|<entry id>|<delivery count>')
-- Returns how many slots were held (a slot that expired meanwhile is not).
local now = now_ms()
local state, holders, acquired = KEYS[LK.state], KEYS[LK.holders], KEYS[LK.acquired]
local freed = 0
for _, member in ipairs(ARGV) do
  local at = tonumber(redis.call('HGET', acquired, member))
  if at then
    local mean = lim_num(state, 'd')
    local hold = math.max(0, now - at)
    if mean then hold = mean * 0.8 + hold * 0.2 end
    redis.call('HSET', state, 'd', lim_fmt(hold))
  end
  freed = freed + redis.call('ZREM', holders, member)
  redis.call('HDEL', acquired, member)
end
return freed
