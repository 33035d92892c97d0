-- Hand a consumer's pending entries over to the hand-over consumer, keeping their
-- delivery counts (the poison cap goes on counting) and making them reclaimable at
-- once (idle time set past any claim_stale_after); then wake every worker to reclaim.
-- Used to remove a consumer (idle cleanup, Inspector.remove_consumer, a worker's own
-- exit), by a worker restarting under a stable name (what its dead predecessor held),
-- and for one delivery a worker gives up after an internal error.
-- KEYS: 1..11 streams by band
-- ARGV: 1 group  2 consumer  3 hand-over consumer  4 channel  5 mode:
--         'all'  every entry of the consumer, up to a budget per call; then, when none
--                is left, XGROUP DELCONSUMER if 6 is '1'
--         'one'  just the entry 7 (band) 8 (entry id) if the fence 9 (delivery count)
--                still holds
-- Returns {handed, left}: entries handed over, and 1 when some are left for another
-- call (the budget keeps one call short; nothing is ever dropped).
local group, consumer, heir, channel, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local IDLE = '100000000000'  -- ~3 years: past any claim_stale_after
local handed = 0
local function give(stream, eid)
  redis.call('XCLAIM', stream, group, heir, 0, eid, 'IDLE', IDLE, 'JUSTID')
  handed = handed + 1
end
if mode == 'one' then
  local stream = KEYS[tonumber(ARGV[7]) + 1]
  if owned(stream, group, ARGV[8], consumer, ARGV[9]) then give(stream, ARGV[8]) end
else
  local budget = 5000
  for _, stream in ipairs(KEYS) do
    local ok, pending = pcall(redis.call, 'XPENDING', stream, group, '-', '+', budget, consumer)
    if ok then
      for _, p in ipairs(pending) do give(stream, p[1]) end
      budget = budget - #pending
      if budget <= 0 then break end
    end
  end
  if budget <= 0 then
    if handed > 0 then redis.call('PUBLISH', channel, 'r') end
    return {handed, 1}
  end
  if ARGV[6] == '1' then
    for _, stream in ipairs(KEYS) do
      pcall(redis.call, 'XGROUP', 'DELCONSUMER', stream, group, consumer)
    end
  end
end
if handed > 0 then redis.call('PUBLISH', channel, 'r') end
return {handed, 0}
