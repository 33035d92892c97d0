-- Workflow helpers, prepended (after _lib.lua) to the flow_*.lua scripts.
-- KEYS of every flow script: the queue layout (Q in _lib.lua), then 24 the workflow's
-- hash in this queue (KEYS[F]).
-- Fields of that hash, per task <t> of the workflow living in this queue:
--   n:<t>    "band|need|delay ms|at ms": how to enqueue it, how many dependencies
--   d:<t>    JSON [[dependent id, its queue, position], ...]: who waits for it
--   b:<t>    its body while held (until released)
--   s:<t>    'r' released (exactly once), 'x' cancelled (upstream failed / workflow)
--   a:<t>    how many dependencies completed
--   r:<t>:<i> the stored result of its i-th dependency ('' = none), set once
--   ok:<t>   completed (counted once in 'ok')
-- and per queue: nq (tasks here), ok, ids:<k> (JSON lists of this queue's task ids,
-- k = 1..chunks), chunks; cancel (the workflow was cancelled: nothing is released);
-- meta (JSON, in the workflow's home queue only: ids, output, queues).
local F = 24

-- Enqueue a held task whose dependencies all completed: at most once ('s:' = 'r'),
-- never after the workflow was cancelled. `spec` may be given (already read).
-- Returns true when it went to a stream.
local function flow_release(tid, channel, spec)
  local flow = KEYS[F]
  local st = redis.call('HGET', flow, 's:' .. tid)
  if st == 'r' then return false end
  if redis.call('HEXISTS', flow, 'cancel') == 1 then return false end
  spec = spec or redis.call('HGET', flow, 'n:' .. tid)
  if not spec then return false end
  local band, need, delay, at = string.match(spec, '^(%d+)|(%d+)|(-?%d+)|(-?%d+)$')
  if not band then return false end
  need = tonumber(need)
  if need > 0 and (tonumber(redis.call('HGET', flow, 'a:' .. tid)) or 0) < need then
    return false
  end
  local blob = redis.call('HGET', flow, 'b:' .. tid)
  if not blob then return false end
  if st == 'x' then redis.call('HDEL', KEYS[Q.bodies], tid) end  -- its cancelled record's
  local _, _, woke = enqueue_write(KEYS[tonumber(band) + 1], KEYS[Q.index], KEYS[Q.bodies],
    KEYS[Q.scheduled], KEYS[Q.stats], false, tid, blob, band, tonumber(delay), tonumber(at),
    0, channel)
  redis.call('HSET', flow, 's:' .. tid, 'r')
  redis.call('HDEL', flow, 'b:' .. tid)
  redis.call('HINCRBY', flow, 'released', 1)
  return woke
end

-- A body whose header says why it was cancelled: the header is one JSON object, so the
-- fields go before its closing brace (a repeated key: the later one wins when read).
local function with_reason(blob, reason)
  local cut = string.find(blob, '\n', 1, true)
  if not cut then return blob end
  local fields = ',"e":' .. cjson.encode(reason)
  if reason ~= 'cancelled' then fields = fields .. ',"dr":' .. cjson.encode(reason) end
  return string.sub(blob, 1, cut - 2) .. fields .. '}' .. string.sub(blob, cut)
end

-- Cancel a held task (a dependency failed, or the workflow is cancelled): its record
-- says cancelled with `reason`, its waiters hear it, and (through finish → flow_done)
-- its own dependents are cancelled in turn. Kept in the hash: a retried dependency
-- can still release it. Returns true when it was cancelled by this call.
local function flow_cancel_held(tid, reason, keep)
  local flow = KEYS[F]
  if redis.call('HEXISTS', flow, 's:' .. tid) == 1 then return false end
  local blob = redis.call('HGET', flow, 'b:' .. tid)
  local spec = redis.call('HGET', flow, 'n:' .. tid)
  if not blob or not spec then return false end
  redis.call('HSET', flow, 's:' .. tid, 'x')
  local band = tonumber(string.match(spec, '^(%d+)|')) or 0
  finish(KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.finished], tid, band, 'x',
         with_reason(blob, reason), now_ms(), '', keep, '', '')
  incr(KEYS[Q.stats], 'cancelled', 1)
  notify_waiters(KEYS[Q.waiters], tid, 'x')
  return true
end

-- Make one chunk (k) of this queue's part of the workflow visible: held tasks get a
-- 'w' index record (so Client.result waits for them), first steps are released.
-- Idempotent (opened:<k>). Returns true when something went to a stream.
local function flow_open_chunk(k, channel)
  local flow = KEYS[F]
  if redis.call('HSETNX', flow, 'opened:' .. k, '1') == 0 then return false end
  local woke = false
  for _, tid in ipairs(cjson.decode(redis.call('HGET', flow, 'ids:' .. k) or '[]')) do
    local spec = redis.call('HGET', flow, 'n:' .. tid)
    if spec and redis.call('HEXISTS', flow, 's:' .. tid) == 0 then
      if string.match(spec, '^%d+|0|') then
        if flow_release(tid, channel, spec) then woke = true end
      else
        redis.call('HSETNX', KEYS[Q.index], tid, 'w|' .. string.match(spec, '^(%d+)|') .. '|0')
      end
    end
  end
  return woke
end

-- Open chunk `only` of this queue's part, or every chunk (only = 0).
local function flow_open(channel, only)
  local woke = false
  local chunks = tonumber(redis.call('HGET', KEYS[F], 'chunks')) or 0
  for k = 1, chunks do
    if (only == 0 or only == k) and flow_open_chunk(k, channel) then woke = true end
  end
  return woke
end
