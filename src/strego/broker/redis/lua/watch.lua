-- How tasks ended, for Client.result; registers a waiter for those not finished yet.
-- Registration and lookup are one atomic step, and the caller subscribed to the
-- waiters channel before calling: a task that finishes after this call finds the
-- registration (and publishes, see notify_waiters); one that finished before is
-- reported here. Nothing falls between the two.
-- KEYS: 1 index  2 bodies  3 result waiters (zset)  4.. result keys, one per task id
-- ARGV: 1 registration lease ms (0 = look only)  2.. task ids
-- Returns 2 values per task id, in order:
--   'v', stored result   completed, its result kept
--   'c', ''              completed: returned None, or its result is not kept
--   'd', header line     dead-lettered (the header JSON holds dr and e)
--   'x', header line     cancelled
--   'w', state letter    not finished yet (registered when the lease is > 0)
--   'n', ''              unknown here, or its result expired
local now = now_ms()
local lease = tonumber(ARGV[1])
local out = {}
local function header(blob)
  if not blob then return '' end
  local cut = string.find(blob, '\n', 1, true)
  if cut then return string.sub(blob, 1, cut - 1) end
  return blob
end
for i = 2, #ARGV do
  local tid = ARGV[i]
  local rec = redis.call('HGET', KEYS[1], tid)
  local state = rec and string.sub(rec, 1, 1) or ''
  local code, data = 'n', ''
  if state == 'c' or state == '' then
    -- A record evicted from the finished ring may leave its result behind: look too.
    local stored = redis.call('GET', KEYS[i + 2])
    if stored then
      code, data = 'v', stored
    elseif state == 'c' and redis.call('HEXISTS', KEYS[2], tid .. '\n') == 0 then
      code = 'c'
    end
  elseif state == 'd' or state == 'x' then
    code, data = state, header(redis.call('HGET', KEYS[2], tid))
  else  -- p k s r: waiting, running, scheduled or retrying
    code, data = 'w', state
    if lease > 0 then redis.call('ZADD', KEYS[3], now + lease, tid) end
  end
  out[#out + 1] = code
  out[#out + 1] = data
end
trim_waiters(KEYS[3], now)
return out
