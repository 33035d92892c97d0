-- Read-only: one queue's gauges for the UI's /metrics (it changes nothing).
-- KEYS: the queue layout Q (see _lib.lua)
-- ARGV: 1 the caller's group (used when the queue records none)
-- Returns {pending, active, scheduled, retry, dead, oldest pending age ms or -1}.
-- Pending entries are those after the group's last-delivered id (delivered ones wait
-- in the pending list, running or handed over); the oldest of them is the queue's
-- latency, measured on Redis' clock like the entry ids themselves.
local group = group_of(KEYS[Q.group], ARGV[1])
local pending, active, oldest = 0, 0, nil
for band = 0, 10 do
  local stream = KEYS[band + 1]
  local length = redis.call('XLEN', stream)
  if length > 0 then
    local held, last = 0, '0-0'
    local ok, summary = pcall(redis.call, 'XPENDING', stream, group)
    if ok then held = tonumber(summary[1]) or 0 end
    local found, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
    if found then
      for _, info in ipairs(groups) do
        local fields = {}
        for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
        if fields['name'] == group then last = fields['last-delivered-id'] end
      end
    end
    active = active + held
    pending = pending + math.max(0, length - held)
    local first = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', 1)
    if #first > 0 then
      local ms = tonumber(string.match(first[1][1], '^(%d+)'))
      if ms and (oldest == nil or ms < oldest) then oldest = ms end
    end
  end
end
local age = -1
if oldest then age = math.max(0, now_ms() - oldest) end
return {pending, active, redis.call('ZCARD', KEYS[Q.scheduled]),
        redis.call('ZCARD', KEYS[Q.retry]), redis.call('ZCARD', KEYS[Q.dead]), age}
