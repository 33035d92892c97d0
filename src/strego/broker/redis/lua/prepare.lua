-- Record the consumer group that serves this queue and create it on every band stream.
-- One group per queue: a worker naming another group is refused here, before it can
-- read a task (two applications on one queue used to run the same tasks twice).
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 group  2 this worker's consumer name (created at once, so a live idle worker
--       shows among the group's consumers before it reads anything)
-- Returns 'ok', or an error reply starting with WRONGGROUP naming the recorded group.
local recorded = redis.call('GET', KEYS[Q.group])
if recorded and recorded ~= ARGV[1] then
  return redis.error_reply('WRONGGROUP ' .. recorded)
end
if not recorded then redis.call('SET', KEYS[Q.group], ARGV[1]) end
for band = 0, 10 do
  pcall(redis.call, 'XGROUP', 'CREATE', KEYS[band + 1], ARGV[1], '0', 'MKSTREAM')
  pcall(redis.call, 'XGROUP', 'CREATECONSUMER', KEYS[band + 1], ARGV[1], ARGV[2])
end
return 'ok'
