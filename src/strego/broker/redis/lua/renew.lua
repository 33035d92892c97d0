-- Renew the leases of tasks this consumer is running (reset their idle time), so a
-- long handler is never reclaimed while its worker lives.
-- KEYS: 1..11 streams
-- ARGV: 1 group  2 consumer, then pairs: band, entry id
-- Returns the entry ids this consumer no longer owns (its lease was lost).
local lost = {}
for i = 3, #ARGV, 2 do
  local stream, eid = KEYS[tonumber(ARGV[i]) + 1], ARGV[i + 1]
  if owned(stream, ARGV[1], eid, ARGV[2]) then
    redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, eid, 'JUSTID')
  else
    lost[#lost + 1] = eid
  end
end
return lost
