-- Remove consumers of a workflow outbox's group that hold nothing (every worker process
-- that ever drained it left one): atomically with the check, so an entry delivered in
-- between can never lose its pending record (it would then never be applied).
-- KEYS: 1 the outbox stream
-- ARGV: 1 group  2 this worker's consumer (kept)  3 idle ms  then consumer names
-- Returns how many were removed.
local removed = 0
for i = 4, #ARGV do
  local name = ARGV[i]
  if name ~= ARGV[2] then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, name)
    if #pending == 0 then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
      removed = removed + 1
    end
  end
end
return removed
