-- Take starts ahead for the tasks a fetch is about to hand this worker, or slots for
-- the worker's pool (sent in the fetch's own pipeline: no round trip of its own). One
-- unkeyed limiter key of a task-type limit. Quantity-aware: one call for many tasks.
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: 1 kind, then
--   'r' (rate): 2 interval ms  3 tau ms  4 how many. Starts that conform now (GCRA;
--       never a reservation, never a booking). Returns {granted, the arrival time it
--       left} (the give-back's fence).
--   'c' (concurrency): 2 limit  3 lease ms  4.. slot members (the worker's pool).
--       Returns how many were taken. Not counted as granted: the worker counts the
--       starts made on them ('n').
--   Both all or none, and only far from the limit: a rate limiter must have more
--   starts that conform now than asked for, a concurrency limiter at least twice as
--   many free slots (a slot taken for a task that did not come blocks others until it
--   is given back). Near its limit every task asks for itself as before
--   (reservations, bookings, fair spacing).
--   'n' (count): 2 how many starts the worker made on its pool's slots (Redis did not
--       see them): added to the limiter's granted total.
--   'g' (give back unused rate starts): 2 interval ms  3 how many  4 the arrival time
--       'r' left. Only when nobody was granted since (the time is unchanged): then the
--       state is exactly as if they had never been taken; else they stay spent (the
--       limit errs on the safe side). Returns 1 given back, 0 not.
local kind, now = ARGV[1], lim_now()
local state = KEYS[LK.state]
if kind == 'n' then
  lim_count(KEYS[LK.counters], 'granted', tonumber(ARGV[2]))
  return 1
end
if kind == 'g' then
  local ok, tat = pcall(redis.call, 'HGET', state, 't')
  if not ok or tat ~= ARGV[4] then return 0 end
  local n = tonumber(ARGV[3])
  redis.call('HSET', state, 't', lim_fmt(tonumber(tat) - n * tonumber(ARGV[2])))
  lim_count(KEYS[LK.counters], 'granted', -n)
  return 1
end
if kind == 'r' then
  local interval, tau, want = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local stored = lim_num(state, 't')
  local room, tat = lim_rate_room(state, now, interval, tau)
  if room <= want then return {0, ''} end
  local granted = want
  local left = lim_fmt(tat + granted * interval)
  redis.call('HSET', state, 't', left)
  local book = lim_num(state, 'b') or 0
  redis.call('PEXPIRE', state, math.floor(math.max(tat + granted * interval, book) - now)
             + 3600000)
  lim_count(KEYS[LK.counters], 'granted', granted)
  if not stored then lim_touch(KEYS, 1, '', now) end  -- a new limiter key: list it
  return {granted, left}
end
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local holders, acquired = KEYS[LK.holders], KEYS[LK.acquired]
lim_trim_holders(holders, acquired, now)
local held, want = redis.call('ZCARD', holders), #ARGV - 3
if limit - held < 2 * want then return 0 end
local at = lim_fmt(now)
for i = 4, #ARGV do
  redis.call('ZADD', holders, now + lease, ARGV[i])
  redis.call('HSET', acquired, ARGV[i], at)
end
redis.call('PEXPIRE', holders, lease + 3600000)
redis.call('PEXPIRE', acquired, lease + 3600000)
if held == 0 then lim_touch(KEYS, 1, '', now) end  -- (re)starting use: list it
return want
