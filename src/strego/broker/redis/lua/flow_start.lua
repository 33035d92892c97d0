-- Commit a workflow (phase 2 of enqueue), in its home queue, atomically: its meta
-- record, an outbox entry per queue holding some of its tasks (so any worker opens
-- them if the producer dies right after this), then open the first chunk here (the
-- producer opens the rest, chunk by chunk, so workers start meanwhile).
-- Before this script nothing of the workflow is visible; after it the flow runs.
-- KEYS: the queue layout, 24 the workflow's hash here, 25 this queue's outbox
-- ARGV: 1 workflow id  2 meta JSON  3 channel  then every queue's name (this one too)
-- Returns 1 started, 0 already started (a retried call).
if redis.call('HSETNX', KEYS[F], 'meta', ARGV[2]) == 0 then return 0 end
for i = 4, #ARGV do
  redis.call('XADD', KEYS[25], '*', 'w', ARGV[1], 't', '', 's', 'o', 'q', ARGV[i])
end
if flow_open(ARGV[3], 1) then wake_workers(KEYS[Q.idle], ARGV[3]) end
return 1
