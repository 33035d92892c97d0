-- Shared helpers, prepended to every script when it is loaded.
-- Index records in P:{q}:tasks are "state|band|ref[|started|due|worker]":
--   p pending (ref = stream entry id; due = the time it was scheduled for, if it was:
--     "p|band|eid||due")
--   k cancel requested while delivered (ref = entry id)
--   s scheduled, r retry (ref = due ms)
--   d dead, c completed, x cancelled (ref = finished ms; started = ms the last attempt
--     began, due = scheduled time, worker = who finished it; each may be empty)
-- The worker name comes last: it is the only field that may itself contain '|'.
--
-- Scripts that take the whole queue (claim, renew, handover, cancel, delete, promote,
-- requeue, prepare, trim_dead) use one key layout, named by Q below:
--   1..11 streams by band  12 index  13 bodies  14 scheduled  15 retry  16 dead
--   17 finished  18 stats  19 paused  20 idle  21 recorded group  22 throughput hour
--   23 result waiters (zset, and the channel their outcomes go out on)
local Q = {index = 12, bodies = 13, scheduled = 14, retry = 15, dead = 16, finished = 17,
           stats = 18, paused = 19, idle = 20, group = 21, tp = 22, waiters = 23}

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The consumer group that serves this queue: the one recorded by the first worker
-- (prepare.lua), else the caller's. A client or UI configured with another group can
-- then never mistake a delivered entry for a waiting one (it used to XDEL running work).
local function group_of(key, given)
  if not key then return given end
  local recorded = redis.call('GET', key)
  if recorded then return recorded end
  return given
end

-- True when entry `eid` has been delivered to some consumer and not acknowledged yet.
-- A stream whose group does not exist yet (no worker ever started on the queue)
-- has delivered nothing: XPENDING's NOGROUP error means "no", not a failure.
local function delivered(stream, group, eid)
  local ok, p = pcall(redis.call, 'XPENDING', stream, group, eid, eid, 1)
  return ok and #p > 0
end

-- Parse an index record: state, band, ref, started, due, worker (missing ones are '').
local function split_record(rec)
  local parts, pos = {}, 1
  for _ = 1, 5 do
    local bar = string.find(rec, '|', pos, true)
    if not bar then break end
    parts[#parts + 1] = string.sub(rec, pos, bar - 1)
    pos = bar + 1
  end
  parts[#parts + 1] = string.sub(rec, pos)
  return parts[1] or '', tonumber(parts[2]) or 0, parts[3] or '', parts[4] or '',
         parts[5] or '', parts[6] or ''
end

-- The delivery fence. `consumer` holds `eid` AND the entry's delivery count is still
-- `count`, the count this worker was handed it at (XREADGROUP sets 1, every reclaim
-- adds 1, renewal keeps it). A superseded delivery fails this even in the same
-- process or under the same consumer name, so its late outcome is dropped.
local function owned(stream, group, eid, consumer, count)
  local p = redis.call('XPENDING', stream, group, eid, eid, 1, consumer)
  return #p > 0 and (count == nil or tonumber(p[1][4]) == tonumber(count))
end

-- Counters must never fail half-way through a script (an outcome would be applied
-- partly): a field holding garbage is reset, a key of the wrong type is skipped.
local function incr(key, field, n)
  if not pcall(redis.call, 'HINCRBY', key, field, n) then
    pcall(redis.call, 'HSET', key, field, n)
  end
end

-- `minute_field` is '<minute>:p' or '<minute>:f'; without a minute (':f') or a
-- throughput key ('') only the total is counted.
local function count(stats, tp, field, minute_field, n)
  incr(stats, field, n)
  if tp ~= '' and minute_field ~= '' and string.sub(minute_field, 1, 1) ~= ':' then
    incr(tp, minute_field, n)
    pcall(redis.call, 'EXPIRE', tp, 90000)
  end
end

-- Workflows (strego.workflows): a member's finish is recorded in its queue's outbox
-- stream by the very script that applies the outcome, so it can never be lost between
-- the outcome and the release of its dependents (which may live in another cluster
-- slot: a worker applies the record later, idempotently; see flow_drain.py). The
-- outbox name is derived from the index key's (same slot; keys.py flow_outbox). Tasks
-- outside workflows pay one bounded find in their header line.
local function flow_done(index, tid, letter, blob)
  if not blob then return end
  local cut = string.find(blob, '\n', 1, true)
  if not cut then return end
  local head = string.sub(blob, 1, cut - 1)
  if not string.find(head, '"wf":', 1, true) then return end
  local ok, h = pcall(cjson.decode, head)
  if not ok or type(h) ~= 'table' or type(h.wf) ~= 'string' then return end
  redis.call('XADD', string.sub(index, 1, -6) .. 'flow:outbox', '*',
             'w', h.wf, 't', tid, 's', letter)
end

-- Remember a finished task (completed or cancelled) in the capped ring, then trim
-- the ring. Records are only removed from the index if they still describe a
-- finished task (an explicit id may have been enqueued again since).
local function finish(index, bodies, finished, tid, band, state, blob, now, worker, keep,
                      started, due)
  flow_done(index, tid, state, blob)
  if keep <= 0 or not blob then
    redis.call('HDEL', index, tid)
    redis.call('HDEL', bodies, tid, tid .. '\n')
    return
  end
  redis.call('HSET', bodies, tid, blob)
  redis.call('HSET', index, tid, table.concat(
    {state, band, now, started or '', due or '', worker or ''}, '|'))
  local length = redis.call('LPUSH', finished, tid)  -- its new length: no LLEN per turn
  while length > keep do
    local old = redis.call('RPOP', finished)
    length = length - 1
    local rec = redis.call('HGET', index, old)
    if rec then
      local st = string.sub(rec, 1, 1)
      if st == 'c' or st == 'x' then
        redis.call('HDEL', index, old)
        redis.call('HDEL', bodies, old, old .. '\n')  -- with its "result kept" flag
      end
    end
  end
end

local function entry_blob(stream, eid)
  local e = redis.call('XRANGE', stream, eid, eid)
  if #e == 0 then return nil end
  local fields = e[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'd' then return fields[i + 1] end
  end
  return nil
end

-- The task id of a blob: its header starts with {"id":"..." (envelope.encode writes it
-- first). Ids with characters JSON escapes fall back to decoding the header line.
local function blob_task_id(blob)
  local tid = string.match(blob, '^{"id":"([^"\\]*)"')
  if tid then return tid end
  local cut = string.find(blob, '\n', 1, true)
  if not cut then return nil end
  local ok, header = pcall(cjson.decode, string.sub(blob, 1, cut - 1))
  if ok and type(header) == 'table' and type(header.id) == 'string' then return header.id end
  return nil
end

-- The body of a dead letter for a task whose own body is gone: a header only.
local function lost_blob(tid, queue, why, now)
  return '{"id":' .. cjson.encode(tid) .. ',"t":"?","q":' .. cjson.encode(queue)
    .. ',"ca":' .. string.format('%d', now) .. ',"s":"raw","mr":0,"e":' .. cjson.encode(why)
    .. ',"dr":"lost","fa":' .. string.format('%d', now) .. '}\n'
end

-- Drop dead letters older than ttl_ms and beyond max_count, at most 100 of each per
-- call (bounded work); index records are removed only if they still say dead.
local function trim_dead(dead, index, bodies, now, ttl_ms, max_count)
  local function drop(ids)
    for _, old in ipairs(ids) do
      redis.call('ZREM', dead, old)
      local rec = redis.call('HGET', index, old)
      if rec and string.sub(rec, 1, 1) == 'd' then
        redis.call('HDEL', index, old)
        redis.call('HDEL', bodies, old)
      end
    end
  end
  local old = redis.call('ZRANGEBYSCORE', dead, '-inf', now - ttl_ms, 'LIMIT', 0, 100)
  drop(old)
  local excess = redis.call('ZCARD', dead) - max_count
  if excess > 0 then drop(redis.call('ZRANGE', dead, 0, math.min(excess, 100) - 1)) end
  return #old
end

-- Dead-letter one task: the dead set, its body, its index record, counters, then a
-- bounded trim. `started`, `due` and `worker` go into the record for the task page.
local function bury(dead, index, bodies, stats, tp, minute_field, tid, band, blob, now,
                    started, due, worker, ttl_ms, max_count)
  flow_done(index, tid, 'd', blob)
  redis.call('ZADD', dead, now, tid)
  redis.call('HSET', bodies, tid, blob)
  redis.call('HDEL', bodies, tid .. '\n')  -- a kept result of an earlier run (explicit id)
  redis.call('HSET', index, tid, table.concat(
    {'d', band, now, started or '', due or '', worker or ''}, '|'))
  count(stats, tp, 'failed', minute_field, 1)
  incr(stats, 'dead', 1)
  trim_dead(dead, index, bodies, now, ttl_ms, max_count)
end

-- Results (Client.result). A completed task whose result is kept carries the bodies
-- field '<tid>\n' (task ids never hold a newline) while its finished record lives:
-- a record that says completed but has no result key then means "its result expired"
-- (not found), never "it returned None".
local RESULT_INLINE = 8192  -- results up to this size ride in the notification

-- Store a completed task's result for ttl_ms, or clear an earlier run's (an explicit
-- id runs again once its processed marker expired). `key` is false when the caller
-- gave no result key (an auto id that returned None). Returns the waiters' letter.
local function keep_result(bodies, tid, key, ttl_ms, stored, record_kept)
  if not key then return 'c' end
  if stored == '' then
    redis.call('DEL', key)
    redis.call('HDEL', bodies, tid .. '\n')
    return 'c'
  end
  redis.call('SET', key, stored, 'PX', ttl_ms)
  if record_kept then redis.call('HSET', bodies, tid .. '\n', '1') end
  return 'v'
end

-- Tell the waiters of `tid` how it ended: published only when some Client.result
-- registered for this very task (watch.lua), so with no waiters nothing is published.
-- The channel has the zset's name. Message: '<letter>:<tid>' ['\n' .. stored result];
-- letters: v completed with a kept result, c completed without one, d dead-lettered,
-- x cancelled, n deleted. pcall: a garbage key must not fail an outcome half-applied.
local function notify_waiters(waiters, tid, letter, stored)
  local ok, score = pcall(redis.call, 'ZSCORE', waiters, tid)
  if not ok or not score then return end
  redis.call('ZREM', waiters, tid)
  local message = letter .. ':' .. tid
  if letter == 'v' and #stored <= RESULT_INLINE then message = message .. '\n' .. stored end
  redis.call('PUBLISH', waiters, message)
end

-- Drop waiter registrations whose lease lapsed (a waiter that timed out or died), at
-- most 100 a call: bounded work, and the zset cannot grow without bound.
local function trim_waiters(waiters, now)
  local ok, old = pcall(redis.call, 'ZRANGEBYSCORE', waiters, '-inf', now, 'LIMIT', 0, 100)
  if ok and #old > 0 then redis.call('ZREM', waiters, unpack(old)) end
end

-- Wake schedulers when `due` is now the earliest delayed task.
local function notify_due(delayed, channel, tid, due)
  local first = redis.call('ZRANGE', delayed, 0, 0)
  if first[1] == tid then
    redis.call('PUBLISH', channel, 's:' .. due)
  end
end

-- The hand-off registry (fetch.lua) next to the idle marker `idle` ('...:idle').
local function handoff_of(idle)
  return string.sub(idle, 1, -5) .. 'handoff'
end

-- One-hop hand-off of a new pending task to an idle worker (fetch.lua registers idle
-- workers in the hash `handoff`: consumer -> "slots|deadline ms|group"). The entry is
-- delivered to that consumer here, as its own XREADGROUP would (delivery count 1, the
-- same fence), and pushed onto its inbox list as "band entry-id " then the fields as
-- length-prefixed strings. Not while paused. Reading only the task's own band keeps
-- priority exact: a registration means "nothing was waiting", and every stream write
-- that does not hand its entry over ends all registrations (wake_workers, release.lua),
-- so while one exists no other band holds an undelivered entry.
-- Returns true when it handed an entry over (then nobody needs a wake-up).
local function hand_off(handoff, paused, stream, band)
  if redis.call('EXISTS', paused) == 1 then return false end
  local now = now_ms()
  local consumer, slots, deadline, group
  for _ = 1, 3 do  -- a few picks: a lapsed registration is removed, not used
    local pick = redis.call('HRANDFIELD', handoff, 1, 'WITHVALUES')
    consumer = pick[1]
    if not consumer then return false end
    slots, deadline, group = string.match(pick[2], '^(%d+)|(%d+)|(.*)$')
    if slots and tonumber(deadline) >= now then break end
    redis.call('HDEL', handoff, consumer)  -- a worker that died idle, or garbage
    consumer = nil
  end
  if not consumer then return false end
  local ok, r = pcall(redis.call, 'XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1,
                      'STREAMS', stream, '>')
  if not ok or not r then return false end
  local eid, fields = r[1][2][1][1], r[1][2][1][2]
  local parts = {band, ' ', eid, ' '}
  for _, f in ipairs(fields) do
    parts[#parts + 1] = #f .. ':' .. f
  end
  local inbox = handoff .. ':' .. consumer
  redis.call('RPUSH', inbox, table.concat(parts))
  redis.call('PEXPIRE', inbox, tonumber(deadline) - now + 60000)
  if tonumber(slots) > 1 then
    redis.call('HSET', handoff, consumer, (slots - 1) .. '|' .. deadline .. '|' .. group)
  else
    redis.call('HDEL', handoff, consumer)
  end
  return true
end

local function wake_workers(idle, channel)
  if redis.call('EXISTS', idle) == 1 then
    -- Registered workers hear this too (a registration implies the marker): they fetch,
    -- and register again only if nothing waits (see hand_off).
    redis.call('DEL', idle, handoff_of(idle))
    redis.call('PUBLISH', channel, 'w')
  end
end


-- Enqueueing is two phases (shared by enqueue.lua and enqueue_many.lua): every check
-- (reads only) for every task of the call, then the writes. A check that fails (say a
-- unique key holding a non-string) raises before anything is written, so a call is
-- all-or-nothing. `unique` and `processed` are key names or false.
-- Returns status, ref when the task must not be written, else nil.
local function enqueue_check(index, unique, processed, tid, claimed)
  -- `claimed` remembers ids and unique keys taken earlier in the same call.
  if claimed['\0' .. tid] then return 'exists', 'p' end
  local existing = redis.call('HGET', index, tid)
  if existing then
    -- Any record of an auto id means this very task was already enqueued: a client
    -- retrying after a lost reply must not run it twice (an auto id is never reused).
    -- An explicit id may run again once it finished and its marker expired.
    local st = string.sub(existing, 1, 1)
    if (st ~= 'c' and st ~= 'x') or not processed then return 'exists', existing end
  end
  if processed and redis.call('EXISTS', processed) == 1 then return 'processed', '' end
  if unique then
    local holder = claimed[unique] or redis.call('GET', unique)
    if holder then return 'duplicate', holder end
    claimed[unique] = tid
  end
  claimed['\0' .. tid] = true
  return nil
end

-- The writes of one checked task. Returns status, ref, and true when the task went to
-- a stream (the caller then wakes idle workers once).
local function enqueue_write(stream, index, bodies, scheduled, stats, unique, tid, blob, band,
                             delay_ms, at_ms, unique_ttl_ms, channel)
  -- Due times use Redis's clock (TIME), so producer clock skew does not move them.
  local due, now = -1, 0
  if delay_ms > 0 or at_ms > 0 then
    now = now_ms()
    if delay_ms > 0 then due = now + delay_ms end
    if at_ms > now then due = at_ms end
  end
  local status, ref, woke
  if due > now then
    redis.call('ZADD', scheduled, due, tid)
    redis.call('HSET', bodies, tid, blob)
    redis.call('HSET', index, tid, 's|' .. band .. '|' .. due)
    notify_due(scheduled, channel, tid, due)
    status, ref, woke = 'scheduled', tostring(due), false
  else
    local eid = redis.call('XADD', stream, '*', 'd', blob)
    redis.call('HSET', index, tid, 'p|' .. band .. '|' .. eid)
    status, ref, woke = 'pending', eid, true
  end
  if unique then redis.call('SET', unique, tid, 'PX', unique_ttl_ms) end
  incr(stats, 'enqueued', 1)
  return status, ref, woke
end

-- True when `tid` already sits in state `state` with exactly `blob` as its body: the
-- outcome being applied is a replay of one that landed (its reply was lost and the
-- worker retried), so it must be reported as applied, not as a lost lease.
local function already_applied(index, bodies, tid, state, blob)
  local rec = redis.call('HGET', index, tid)
  return rec ~= false and string.sub(rec, 1, 1) == state
    and redis.call('HGET', bodies, tid) == blob
end

-- Take a delivered entry back from the stream: acknowledge and delete it. Returns the
-- due time its pending record carried (kept for the finished record), or ''.
local function take_back(stream, group, eid, index, tid)
  redis.call('XACK', stream, group, eid)
  redis.call('XDEL', stream, eid)
  local rec = redis.call('HGET', index, tid)
  if not rec then return '' end
  local _, _, _, _, due = split_record(rec)
  return due
end
