-- Shared helpers, prepended to every script when it is loaded.
-- Index records in P:{q}:tasks are "state|band|ref[|extra]":
--   p pending (ref = stream entry id)      k cancel requested while active (ref = entry id)
--   s scheduled, r retry (ref = due ms)    d dead (ref = failed ms)
--   c completed, x cancelled (ref = finished ms, extra = worker)

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- True when entry `eid` has been delivered to some consumer and not acknowledged yet.
-- A stream whose group does not exist yet (no worker ever started on the queue)
-- has delivered nothing: XPENDING's NOGROUP error means "no", not a failure.
local function delivered(stream, group, eid)
  local ok, p = pcall(redis.call, 'XPENDING', stream, group, eid, eid, 1)
  return ok and #p > 0
end

local function split_record(rec)
  local state, band, ref, extra = string.match(rec, '^(%a)|(%d+)|([^|]*)|?(.*)$')
  return state, tonumber(band), ref, extra
end

-- True when `consumer` holds `eid` in the group's pending list. Every outcome checks
-- this first: a frozen worker whose task was reclaimed must not ack the new owner's.
local function owned(stream, group, eid, consumer)
  local p = redis.call('XPENDING', stream, group, eid, eid, 1, consumer)
  return #p > 0
end

-- Remember a finished task (completed or cancelled) in the capped ring, then trim
-- the ring. Records are only removed from the index if they still describe a
-- finished task (an explicit id may have been enqueued again since).
local function finish(index, bodies, finished, tid, band, state, blob, now, worker, keep)
  if keep <= 0 or not blob then
    redis.call('HDEL', index, tid)
    redis.call('HDEL', bodies, tid)
    return
  end
  redis.call('HSET', bodies, tid, blob)
  redis.call('HSET', index, tid, state .. '|' .. band .. '|' .. now .. '|' .. worker)
  redis.call('LPUSH', finished, tid)
  while redis.call('LLEN', finished) > keep do
    local old = redis.call('RPOP', finished)
    local rec = redis.call('HGET', index, old)
    if rec then
      local st = string.sub(rec, 1, 1)
      if st == 'c' or st == 'x' then
        redis.call('HDEL', index, old)
        redis.call('HDEL', bodies, old)
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

local function count(stats, tp, field, minute_field, n)
  redis.call('HINCRBY', stats, field, n)
  if tp ~= '' and minute_field ~= '' then
    redis.call('HINCRBY', tp, minute_field, n)
    redis.call('EXPIRE', tp, 90000)
  end
end

-- Wake schedulers when `due` is now the earliest delayed task.
local function notify_due(delayed, channel, tid, due)
  local first = redis.call('ZRANGE', delayed, 0, 0)
  if first[1] == tid then
    redis.call('PUBLISH', channel, 's:' .. due)
  end
end

local function wake_workers(idle, channel)
  if redis.call('EXISTS', idle) == 1 then
    redis.call('DEL', idle)
    redis.call('PUBLISH', channel, 'w')
  end
end


-- Enqueue one task (shared by enqueue.lua and enqueue_many.lua). `unique` and
-- `processed` are key names or false. Returns status, ref, and true when the task
-- went to a stream (the caller then wakes idle workers once).
local function enqueue_one(stream, index, bodies, scheduled, stats, unique, processed,
                           tid, blob, band, delay_ms, at_ms, unique_ttl_ms, channel)
  local existing = redis.call('HGET', index, tid)
  if existing then
    -- Any record of an auto id means this very task was already enqueued: a client
    -- retrying after a lost reply must not run it twice (an auto id is never reused).
    -- An explicit id may run again once it finished and its marker expired.
    local st = string.sub(existing, 1, 1)
    if (st ~= 'c' and st ~= 'x') or not processed then return 'exists', existing, false end
  end
  if processed and redis.call('EXISTS', processed) == 1 then return 'processed', '', false end
  if unique then
    local holder = redis.call('GET', unique)
    if holder then return 'duplicate', holder, false end
    redis.call('SET', unique, tid, 'PX', unique_ttl_ms)
  end
  redis.call('HINCRBY', stats, 'enqueued', 1)
  -- Due times use Redis's clock (TIME), so producer clock skew does not move them.
  local due, now = -1, 0
  if delay_ms > 0 or at_ms > 0 then
    now = now_ms()
    if delay_ms > 0 then due = now + delay_ms end
    if at_ms > now then due = at_ms end
  end
  if due > now then
    redis.call('ZADD', scheduled, due, tid)
    redis.call('HSET', bodies, tid, blob)
    redis.call('HSET', index, tid, 's|' .. band .. '|' .. due)
    notify_due(scheduled, channel, tid, due)
    return 'scheduled', tostring(due), false
  end
  local eid = redis.call('XADD', stream, '*', 'd', blob)
  redis.call('HSET', index, tid, 'p|' .. band .. '|' .. eid)
  return 'pending', eid, true
end

-- True when `tid` already sits in state `state` with exactly `blob` as its body: the
-- outcome being applied is a replay of one that landed (its reply was lost and the
-- worker retried), so it must be reported as applied, not as a lost lease.
local function already_applied(index, bodies, tid, state, blob)
  local rec = redis.call('HGET', index, tid)
  return rec ~= false and string.sub(rec, 1, 1) == state
    and redis.call('HGET', bodies, tid) == blob
end
