-- Delete tasks that are not running: waiting, scheduled, retry, dead or finished.
-- A delivered task is skipped (cancel it instead): deleting it under its worker's feet
-- would make its outcome impossible to record.
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 group (used only if none is recorded), then task ids
-- Returns how many tasks were deleted.
local zsets = {s = KEYS[Q.scheduled], r = KEYS[Q.retry], d = KEYS[Q.dead]}
local group = group_of(KEYS[Q.group], ARGV[1])
local deleted = 0
for i = 2, #ARGV do
  local tid = ARGV[i]
  local rec = redis.call('HGET', KEYS[Q.index], tid)
  if rec then
    local state, band, ref = split_record(rec)
    local ok = true
    if state == 'p' then
      local stream = KEYS[band + 1]
      if delivered(stream, group, ref) then
        ok = false
      else
        redis.call('XDEL', stream, ref)
      end
    elseif state == 'k' then
      ok = false
    elseif zsets[state] then
      redis.call('ZREM', zsets[state], tid)
    else
      redis.call('LREM', KEYS[Q.finished], 0, tid)
    end
    if ok then
      redis.call('HDEL', KEYS[Q.index], tid)
      redis.call('HDEL', KEYS[Q.bodies], tid, tid .. '\n')
      notify_waiters(KEYS[Q.waiters], tid, 'n')  -- gone: its waiters get "not found" now
      deleted = deleted + 1
    end
  end
end
return deleted
