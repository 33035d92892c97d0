-- Remove a consumer from the group without losing its pending entries: they are first
-- handed to a placeholder consumer with a large idle time, so the next reclaim by any
-- live worker picks them up.
-- KEYS: 1..11 streams
-- ARGV: 1 group  2 consumer  3 placeholder consumer  4 idle ms to set
-- Returns how many pending entries were handed over.
local handed = 0
for _, stream in ipairs(KEYS) do
  local ok, pending = pcall(redis.call, 'XPENDING', stream, ARGV[1], '-', '+', 10000, ARGV[2])
  if ok then
    for _, p in ipairs(pending) do
      redis.call('XCLAIM', stream, ARGV[1], ARGV[3], 0, p[1], 'IDLE', ARGV[4], 'JUSTID')
      handed = handed + 1
    end
    pcall(redis.call, 'XGROUP', 'DELCONSUMER', stream, ARGV[1], ARGV[2])
  end
end
return handed
