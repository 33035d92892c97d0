-- Finish a batch of tasks this consumer ran: completed or cancelled.
-- Per task, atomically: delivery fence, XACK + XDEL, index → finished ring, counters.
-- KEYS: 1..11 streams  12 index  13 bodies  14 finished  15 stats  16 throughput hour
--       17.. processed markers, one per task with explicit = 1, in order
-- ARGV: 1 group  2 consumer  3 keep_completed  4 processed ttl ms  5 minute field ('' = none)
--       then per task 7 values: entry id, task id, band, state ('c' or 'x'),
--       explicit (0/1), delivery count (the fence), duration ms
-- Returns the task ids whose delivery was superseded (late outcomes, dropped); a replay
-- of an ack that already landed is not reported.
local group, consumer, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local dropped = {}
local done, cancelled = 0, 0
local marker = 17
for i = 6, #ARGV, 7 do
  local eid, tid, band, state, explicit, deliveries, took = ARGV[i], ARGV[i + 1],
    tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
  local stream = KEYS[band + 1]
  local marker_key = nil
  if explicit == '1' then marker_key = KEYS[marker]; marker = marker + 1 end
  if owned(stream, group, eid, consumer, deliveries) then
    local blob = entry_blob(stream, eid)
    local due = take_back(stream, group, eid, KEYS[12], tid)
    finish(KEYS[12], KEYS[13], KEYS[14], tid, band, state, blob, now, consumer, keep,
           now - took, due)
    if marker_key then redis.call('SET', marker_key, '1', 'PX', ARGV[4]) end
    if state == 'x' then cancelled = cancelled + 1 else done = done + 1 end
  else
    -- Not ours any more. If the index already says this consumer finished it, this is
    -- a replay of our own ack whose reply was lost (a retried pipeline): not a loss.
    local rec = redis.call('HGET', KEYS[12], tid)
    local st, _, _, _, _, by = split_record(rec or 'z|0|')
    if not (rec and st == state and by == consumer) then
      dropped[#dropped + 1] = tid
    end
  end
end
if done > 0 then count(KEYS[15], KEYS[16], 'processed', ARGV[5] .. ':p', done) end
if cancelled > 0 then count(KEYS[15], '', 'cancelled', '', cancelled) end
return dropped
