-- Deliver up to `count` waiting tasks of one queue to this consumer, highest band first.
-- Priority is exact: a lower band is read only when every higher band is empty.
-- KEYS: 1..11 streams by band (0..10)  12 paused  13 idle  14 hand-off registry
--       15.. the queue's own limits, 7 keys each (LK in _limits.lua)
-- ARGV: 1 group  2 consumer  3 count  4 idle marker ttl ms  5 queue name
--       6 hand-off: '-' never used by this consumer, else withdraw first, and offer this
--         many slots when it finds nothing (0: withdraw only)
--       7 hand-off registration ttl ms  8 '1': a blocking read of the inbox is in flight
--       9.. per queue limit 4 values (see lim_queue_room in _limits.lua)
-- Returns -1 when paused, {-2, wait ms} when a queue limit allows nothing now, else a
-- flat list: band, entry id, fields, band, entry id, ...
--
-- One-hop hand-off (docs/guarantees.md, "Idle pickup"): a consumer that finds nothing
-- registers how many tasks it can start; enqueue.lua then delivers a new task to it
-- directly (XREADGROUP on its behalf) and pushes it onto its inbox list, where the
-- worker's BLPOP receives it: one hop instead of a wake-up and a fetch. Every fetch
-- first withdraws the registration and returns what the inbox holds (already delivered
-- to this consumer), so nothing handed over is left behind.
local need = tonumber(ARGV[3])
local out = {}
local handoff = ARGV[6] ~= '-'
local inbox
if handoff then
  inbox = KEYS[14] .. ':' .. ARGV[2]
  redis.call('HDEL', KEYS[14], ARGV[2])
  local handed = redis.call('LRANGE', inbox, 0, -1)
  if #handed > 0 then
    redis.call('DEL', inbox)
    for _, item in ipairs(handed) do
      -- Only what is still ours at its first delivery: a worker that stalled after a
      -- hand-off finds here entries another worker has since reclaimed (found by the
      -- model test: the stalled worker ran one again after it resumed).
      local band, eid = string.match(item, '^(%d+) (%S+) ')
      local ok, mine = false, false
      if band then ok, mine = pcall(owned, KEYS[tonumber(band) + 1], ARGV[1], eid, ARGV[2], 1) end
      if ok and mine then out[#out + 1] = item end
    end
  end
  -- Release the worker's BLPOP (it then sees 'u'): it must not outlive the withdrawal.
  if ARGV[8] == '1' then
    redis.call('RPUSH', inbox, 'u')
    redis.call('PEXPIRE', inbox, ARGV[7])
  end
  if #out > 0 then return {-3, unpack(out)} end
end
if redis.call('EXISTS', KEYS[12]) == 1 then return -1 end
-- >>> queue-wide limits (issue 16): read no more than they allow, atomically
local limit_now = #KEYS > 14 and lim_now()
if limit_now then
  local room, wait = lim_queue_room(KEYS, 15, ARGV, 9, need, limit_now)
  if room == 0 then return {-2, wait} end
  need = room
end
-- <<< queue-wide limits
for band = 10, 0, -1 do
  if need <= 0 then break end  -- (COUNT 0 would mean no limit)
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', need,
                       'STREAMS', KEYS[band + 1], '>')
  if r then
    local entries = r[1][2]
    for i = 1, #entries do
      out[#out + 1] = band
      out[#out + 1] = entries[i][1]
      out[#out + 1] = entries[i][2]
    end
    need = need - #entries
    if need <= 0 then break end
  end
end
if limit_now and #out > 0 then lim_queue_take(KEYS, 15, ARGV, 9, out, ARGV[5], limit_now) end
if #out == 0 and tonumber(ARGV[3]) > 0 then
  -- Tell producers someone is waiting, so the next enqueue publishes a wake-up.
  redis.call('SET', KEYS[13], '1', 'PX', ARGV[4])
  if handoff and tonumber(ARGV[6]) > 0 then
    local deadline = now_ms() + tonumber(ARGV[7])
    redis.call('HSET', KEYS[14], ARGV[2], ARGV[6] .. '|' .. deadline .. '|' .. ARGV[1])
    redis.call('PEXPIRE', KEYS[14], ARGV[7])
  end
end
return out
