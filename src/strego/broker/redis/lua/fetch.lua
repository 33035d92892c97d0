-- Deliver up to `count` waiting tasks of one queue to this consumer, highest band first.
-- Priority is exact: a lower band is read only when every higher band is empty.
-- KEYS: 1..11 streams by band (0..10)  12 paused  13 idle
-- ARGV: 1 group  2 consumer  3 count  4 idle marker ttl ms
-- Returns -1 when paused, else a flat list: band, entry id, fields, band, entry id, ...
if redis.call('EXISTS', KEYS[12]) == 1 then return -1 end
local need = tonumber(ARGV[3])
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
if #out == 0 then
  -- Tell producers someone is waiting, so the next enqueue publishes a wake-up.
  redis.call('SET', KEYS[13], '1', 'PX', ARGV[4])
end
return out
