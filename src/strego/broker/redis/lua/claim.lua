-- Reclaim entries idle longer than min_idle from dead consumers (one XAUTOCLAIM window).
-- KEYS: 1 stream
-- ARGV: 1 group  2 consumer  3 min idle ms  4 cursor  5 count
-- Returns {next cursor, {entry id, fields, deliveries, ...}, {deleted entry ids}}.
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
                     'COUNT', ARGV[5])
local out = {}
local deleted = r[3] or {}
for _, entry in ipairs(r[2]) do
  local eid, fields = entry[1], entry[2]
  if fields then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], eid, eid, 1)
    out[#out + 1] = eid
    out[#out + 1] = fields
    out[#out + 1] = p[1] and p[1][4] or 1
  else
    -- Redis 6.2 reports a deleted entry as a nil body and keeps it pending.
    redis.call('XACK', KEYS[1], ARGV[1], eid)
    deleted[#deleted + 1] = eid
  end
end
return {r[1], out, deleted}
