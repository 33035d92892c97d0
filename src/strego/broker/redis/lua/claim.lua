-- Reclaim abandoned entries: delivered to another consumer, not renewed for min_idle.
-- Takes at most `limit` (what this worker can start now), highest band first, and
-- nothing while the queue is paused. Never an entry this worker holds (ARGV 11..: a
-- stalled worker must not reclaim, and so re-run, its own running task); entries under
-- its name it does not hold (a fetch whose reply was lost) are fair game. In one pass,
-- atomically per entry:
--   * a cancel was requested (record 'k'): finished as cancelled, never handed out;
--   * its body was deleted: acknowledged and dead-lettered as lost;
--   * otherwise XCLAIMed: the delivery count goes up by one (the new delivery's fence).
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 group  2 consumer  3 min idle ms  4 limit  5 queue name  6 keep_completed
--       7 max dead  8 dead ttl ms  9 minute field  10 the hand-over consumer (removed from
--       a band's group once it holds nothing there, so it does not linger in listings)
--       11.. entry ids this worker holds (its leases on this queue)
-- Returns {claimed, cancelled, lost, more}: claimed is a flat list (band, entry id,
-- fields, delivery count, ...); cancelled and lost are task ids / lost dead-letter ids;
-- more = 1 when the scan stopped at its bound with entries left to look at.
local group, consumer, min_idle = ARGV[1], ARGV[2], ARGV[3]
local limit = tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[Q.paused]) == 1 then return {{}, {}, {}, 0} end
local now = now_ms()
local held = {}
for i = 11, #ARGV do held[ARGV[i]] = true end
local claimed, cancelled, lost = {}, {}, {}
local emptied = {}
local taken, scanned, budget = 0, 0, 1000
local more = 0
for band = 10, 0, -1 do
  local stream = KEYS[band + 1]
  local start = '-'
  while taken < limit do
    if scanned >= budget then more = 1; break end
    local ok, rows = pcall(redis.call, 'XPENDING', stream, group, 'IDLE', min_idle, start, '+',
                           math.min(100, budget - scanned))
    if not ok or #rows == 0 then break end
    for _, row in ipairs(rows) do
      local eid, owner = row[1], row[2]
      scanned = scanned + 1
      start = '(' .. eid
      if not (owner == consumer and held[eid]) and taken < limit then
        if owner == ARGV[10] then emptied[band] = true end
        local blob = entry_blob(stream, eid)
        if not blob then
          -- Deleted while pending: its task id went with its body.
          redis.call('XACK', stream, group, eid)
          local id = 'lost-' .. band .. '-' .. eid
          bury(KEYS[Q.dead], KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.stats], KEYS[Q.tp],
               ARGV[9] .. ':f', id, band,
               lost_blob(id, ARGV[5], 'stream entry ' .. eid .. ' was deleted while pending',
                         now),
               now, '', '', owner, tonumber(ARGV[8]), tonumber(ARGV[7]))
          lost[#lost + 1] = id
        else
          local tid = blob_task_id(blob)
          local rec = tid and redis.call('HGET', KEYS[Q.index], tid)
          if rec and string.sub(rec, 1, 1) == 'k' then
            local due = take_back(stream, group, eid, KEYS[Q.index], tid)
            finish(KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.finished], tid, band, 'x', blob, now,
                   consumer, tonumber(ARGV[6]), '', due)
            incr(KEYS[Q.stats], 'cancelled', 1)
            notify_waiters(KEYS[Q.waiters], tid, 'x')
            cancelled[#cancelled + 1] = tid
          else
            local got = redis.call('XCLAIM', stream, group, consumer, 0, eid)
            if got[1] then
              claimed[#claimed + 1] = band
              claimed[#claimed + 1] = eid
              claimed[#claimed + 1] = got[1][2]
              claimed[#claimed + 1] = tonumber(row[4]) + 1
              taken = taken + 1
            end
          end
        end
      end
    end
    if #rows < 100 then break end
  end
  if taken >= limit or more == 1 then break end
end
for band in pairs(emptied) do
  local left = redis.call('XPENDING', KEYS[band + 1], group, '-', '+', 1, ARGV[10])
  if #left == 0 then redis.call('XGROUP', 'DELCONSUMER', KEYS[band + 1], group, ARGV[10]) end
end
return {claimed, cancelled, lost, more}
