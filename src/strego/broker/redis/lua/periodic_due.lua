-- Which of a worker's declared schedules are due, on Redis' clock (so clock skew
-- between workers cannot make one fire early), and when the next one will be.
-- Names Redis has lost (no definition, or no fire time while not paused: a Redis that
-- restarted without its data, a flush, an admin delete) are reported, so the worker
-- declares them again instead of the schedule silently stopping.
-- KEYS: 1 definitions  2 next fire times  3 seen  4 paused
-- ARGV: 1 '1' to mark the names as seen (throttled by the caller), then schedule names
-- Returns {now ms, soonest future next fire ms or -1, {name, next ms, definition, ...},
--          {lost name, ...}}
local now = now_ms()
local soonest = -1
local due, lost = {}, {}
for i = 2, #ARGV do
  local name = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[2], name)
  if not score and (redis.call('HEXISTS', KEYS[1], name) == 0
                    or redis.call('SISMEMBER', KEYS[4], name) == 0) then
    lost[#lost + 1] = name
  elseif score then
    score = tonumber(score)
    if score <= now then
      local def = redis.call('HGET', KEYS[1], name)
      if def then
        due[#due + 1] = name
        due[#due + 1] = string.format('%d', score)
        due[#due + 1] = def
      end
    elseif soonest < 0 or score < soonest then
      soonest = score
    end
  end
  if ARGV[1] == '1' and redis.call('HEXISTS', KEYS[1], name) == 1 then
    redis.call('HSET', KEYS[3], name, now)
  end
end
return {now, soonest, due, lost}
