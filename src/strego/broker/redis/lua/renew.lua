-- Renew the leases of deliveries this consumer holds (reset their idle time), so a
-- long handler is never reclaimed while its worker lives. Each lease is checked
-- against its fence (consumer and delivery count) first.
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 group  2 consumer  3 queue name  4 max dead  5 dead ttl ms  6 minute field,
--       then per lease 4 values: band, entry id, delivery count, task id ('' = unknown)
-- Returns {lost, deleted, cancel}: entry ids whose delivery was superseded (reclaimed
-- elsewhere); entry ids whose body was deleted under them (dead-lettered as lost under
-- their task id, acknowledged: XCLAIM on Redis >= 7 would silently drop them); entry ids
-- whose task has a cancel request (the worker may not have heard it on pub/sub).
-- An entry no longer pending at all is not reported: its outcome landed while this
-- renewal was on its way.
local group, consumer = ARGV[1], ARGV[2]
local now = now_ms()
local lost, deleted, cancel = {}, {}, {}
for i = 7, #ARGV, 4 do
  local band, eid, deliveries, tid = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local stream = KEYS[band + 1]
  local p = redis.call('XPENDING', stream, group, eid, eid, 1)
  if #p > 0 then
    if p[1][2] ~= consumer or tonumber(p[1][4]) ~= tonumber(deliveries) then
      lost[#lost + 1] = eid
    elseif #redis.call('XRANGE', stream, eid, eid) == 0 then
      redis.call('XACK', stream, group, eid)
      local id = tid
      if id == '' then id = 'lost-' .. band .. '-' .. eid end
      bury(KEYS[Q.dead], KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.stats], KEYS[Q.tp],
           ARGV[6] .. ':f', id, band,
           lost_blob(id, ARGV[3], 'stream entry ' .. eid .. ' was deleted while it ran', now),
           now, '', '', consumer, tonumber(ARGV[5]), tonumber(ARGV[4]))
      notify_waiters(KEYS[Q.waiters], id, 'd')
      deleted[#deleted + 1] = eid
    else
      redis.call('XCLAIM', stream, group, consumer, 0, eid, 'JUSTID')
      if tid ~= '' then
        local rec = redis.call('HGET', KEYS[Q.index], tid)
        if rec and string.sub(rec, 1, 1) == 'k' then cancel[#cancel + 1] = eid end
      end
    end
  end
end
return {lost, deleted, cancel}
