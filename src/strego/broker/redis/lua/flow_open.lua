-- Open this queue's part of a started workflow (see flow_open in _flow_lib.lua):
-- run by the producer right after flow_start, and again by whichever worker drains
-- the home queue's outbox entry (idempotent).
-- KEYS: the queue layout, 24 the workflow's hash here
-- ARGV: 1 channel
if redis.call('EXISTS', KEYS[F]) == 0 then return 0 end
if flow_open(ARGV[1]) then wake_workers(KEYS[Q.idle], ARGV[1]) end
return 1
