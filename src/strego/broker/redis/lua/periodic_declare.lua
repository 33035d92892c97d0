-- Upsert a worker's declared schedules of one queue: the latest definition wins.
-- A changed definition whose tick rule (cron, every, tz) is unchanged keeps its next
-- fire time (a redeploy that only changes the payload loses no tick); a new schedule
-- or a changed rule starts over at 0 ("the first tick after now", set by the next
-- worker that looks). Paused schedules stay paused. Marks each as seen (not orphaned).
-- KEYS: 1 definitions  2 next fire times  3 seen  4 paused
-- ARGV: 1 channel, then pairs: name, definition (JSON)
-- Returns how many definitions changed (then schedulers are woken to look again).
local function rule(def)
  local ok, d = pcall(cjson.decode, def)
  if not ok or type(d) ~= 'table' then return '' end
  return tostring(d.cron) .. '|' .. tostring(d.every_ms) .. '|' .. tostring(d.tz)
end
local now = now_ms()
local changed = 0
for i = 2, #ARGV, 2 do
  local name, def = ARGV[i], ARGV[i + 1]
  local old = redis.call('HGET', KEYS[1], name)
  local paused = redis.call('SISMEMBER', KEYS[4], name) == 1
  if old ~= def then
    redis.call('HSET', KEYS[1], name, def)
    changed = changed + 1
    if not paused then
      if old and rule(old) == rule(def) then
        redis.call('ZADD', KEYS[2], 'NX', 0, name)
      else
        redis.call('ZADD', KEYS[2], 0, name)
      end
    end
  elseif not paused then
    redis.call('ZADD', KEYS[2], 'NX', 0, name)
  end
  redis.call('HSET', KEYS[3], name, now)
end
if changed > 0 then redis.call('PUBLISH', ARGV[1], 's:0') end
return changed
