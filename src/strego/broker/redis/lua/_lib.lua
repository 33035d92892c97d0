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

