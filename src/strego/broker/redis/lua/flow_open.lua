-- Open this queue's part of a started workflow (see flow_open in _flow_lib.lua):
-- chunk by chunk by the producer right after flow_start, and all of it again by
-- whichever worker drains the home queue's outbox entry (idempotent).
-- KEYS: the queue layout, 24 the workflow's hash here
-- ARGV: 1 channel  2 chunk (0 = every chunk)
if redis.call('EXISTS', KEYS[F]) == 0 then return 0 end
if flow_open(ARGV[1], tonumber(ARGV[2]) or 0) then wake_workers(KEYS[Q.idle], ARGV[1]) end
return 1
