-- Renew the leases of tasks this consumer is running (reset their idle time), so a
-- long handler is never reclaimed while its worker lives.
-- KEYS: 1..11 streams
-- ARGV: 1 group  2 consumer, then pairs: band, entry id
-- Returns the entry ids now pending under another consumer (the lease was lost).
-- An entry no longer pending at all is not reported: its outcome landed while this
-- renewal was on its way (the worker snapshots its leases before acks are applied),
-- and calling that "lost" made healthy workers warn about reclaims that never
-- happened (found by tests/faults).
local lost = {}
for i = 3, #ARGV, 2 do
  local stream, eid = KEYS[tonumber(ARGV[i]) + 1], ARGV[i + 1]
  local p = redis.call('XPENDING', stream, ARGV[1], eid, eid, 1)
  if #p > 0 then
    if p[1][2] == ARGV[2] then
      redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, eid, 'JUSTID')
    else
      lost[#lost + 1] = eid
    end
  end
end
return lost
