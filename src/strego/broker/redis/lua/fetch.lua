-- Deliver up to `count` waiting tasks of one queue to this consumer, highest band first.
-- Priority is exact: a lower band is read only when every higher band is empty.
-- KEYS: 1..11 streams by band (0..10)  12 paused  13 idle
--       14.. the queue's own limits, 7 keys each (LK in _limits.lua)
-- ARGV: 1 group  2 consumer  3 count  4 idle marker ttl ms  5 queue name
--       6.. per queue limit 4 values (see lim_queue_room in _limits.lua)
-- Returns -1 when paused, {-2, wait ms} when a queue limit allows nothing now, else a
-- flat list: band, entry id, fields, band, entry id, ...
if redis.call('EXISTS', KEYS[12]) == 1 then return -1 end
local need = tonumber(ARGV[3])
-- >>> queue-wide limits (issue 16): read no more than they allow, atomically
local limit_now = #KEYS > 13 and lim_now()
if limit_now then
  local room, wait = lim_queue_room(KEYS, 14, ARGV, 6, need, limit_now)
  if room == 0 then return {-2, wait} end
  need = room
end
-- <<< queue-wide limits
local out = {}
for band = 10, 0, -1 do
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', need,
                       'STREAMS', KEYS[band + 1], '>')
  if r then
    local entries = r[1][2]
    for i = 1, #entries do
      out[#out + 1] = band
      out[#out + 1] = entries[i][1]
      out[#out + 1] = entries[i][2]
    end
    need = need - #entries
    if need <= 0 then break end
  end
end
if limit_now and #out > 0 then lim_queue_take(KEYS, 14, ARGV, 6, out, ARGV[5], limit_now) end
if #out == 0 then
  -- Tell producers someone is waiting, so the next enqueue publishes a wake-up.
  redis.call('SET', KEYS[13], '1', 'PX', ARGV[4])
end
return out
