-- Dead-letter one task, atomically, then trim dead letters by age and count.
-- KEYS: 1 stream  2 index  3 bodies  4 dead  5 stats  6 throughput hour  7 result waiters
-- ARGV: 1 group  2 consumer  3 entry id ('' = not in a stream)  4 task id
--       5 blob (with reason, error, traceback)  6 band  7 max dead  8 dead ttl ms
--       9 minute field  10 delivery count (the fence)  11 duration ms
-- Returns 1 dead-lettered (or already, by this very call replayed), 0 superseded
-- delivery (late outcome dropped).
local stream, eid, tid = KEYS[1], ARGV[3], ARGV[4]
local now = now_ms()
local due = ''
if eid ~= '' then
  if not owned(stream, ARGV[1], eid, ARGV[2], ARGV[10]) then
    if already_applied(KEYS[2], KEYS[3], tid, 'd', ARGV[5]) then return 1 end
    return 0
  end
  due = take_back(stream, ARGV[1], eid, KEYS[2], tid)
end
bury(KEYS[4], KEYS[2], KEYS[3], KEYS[5], KEYS[6], ARGV[9] .. ':f', tid, ARGV[6], ARGV[5],
     now, now - tonumber(ARGV[11]), due, ARGV[2], tonumber(ARGV[8]), tonumber(ARGV[7]))
notify_waiters(KEYS[7], tid, 'd')
return 1
