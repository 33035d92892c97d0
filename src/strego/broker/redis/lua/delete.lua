-- Delete tasks that are not running: waiting, scheduled, retry, dead or finished.
-- A running task is skipped (cancel it instead): deleting it under its worker's feet
-- would make its outcome impossible to record.
-- KEYS: 1..11 streams  12 index  13 bodies  14 scheduled  15 retry  16 dead  17 finished
-- ARGV: 1 group, then task ids
-- Returns how many tasks were deleted.
local zsets = {s = KEYS[14], r = KEYS[15], d = KEYS[16]}
local deleted = 0
for i = 2, #ARGV do
  local tid = ARGV[i]
  local rec = redis.call('HGET', KEYS[12], tid)
  if rec then
    local state, band, ref = split_record(rec)
    local ok = true
    if state == 'p' then
      local stream = KEYS[band + 1]
      if delivered(stream, ARGV[1], ref) then
        ok = false
      else
        redis.call('XDEL', stream, ref)
      end
    elseif state == 'k' then
      ok = false
    elseif zsets[state] then
      redis.call('ZREM', zsets[state], tid)
    else
      redis.call('LREM', KEYS[17], 0, tid)
    end
    if ok then
      redis.call('HDEL', KEYS[12], tid)
      redis.call('HDEL', KEYS[13], tid)
      deleted = deleted + 1
    end
  end
end
return deleted
