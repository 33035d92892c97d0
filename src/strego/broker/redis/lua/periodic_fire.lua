-- Fire a schedule: enqueue its due ticks and advance its next fire time, atomically,
-- only if the stored next fire time and definition are still the ones the caller
-- planned from (compare-and-set). Two workers can plan the same ticks; one applies.
-- Each tick's task id is periodic:<name>:<tick ms> and is checked like an explicit id
-- (its index record, its processed marker): a second safety net. With overlap skip a
-- tick is skipped while the schedule's last run still waits or runs.
-- A trigger (ARGV 3 = '') enqueues without the compare-and-set and leaves the next fire
-- time alone. Every run goes into the schedule's log, capped at 20.
-- KEYS: 1 stream (the task's band)  2 index  3 bodies  4 stats  5 idle  6 definitions
--       7 next fire times  8 last runs  9 the schedule's log
--       10.. one processed marker per tick, in ARGV order
-- ARGV: 1 name  2 definition  3 expected next ms ('' = trigger)  4 new next ms
--       5 '1' = overlap skip  6 channel  7 band, then per tick: tick ms, task id, blob
-- Returns {'fired', fired, skipped} | {'moved', current next or '-1'} | {'changed', ''}
--   | {'early', now} | {'gone', ''}
local name = ARGV[1]
local now = now_ms()
local trigger = ARGV[3] == ''
local def = redis.call('HGET', KEYS[6], name)
if not def then return {'gone', ''} end
if not trigger then
  local cur = redis.call('ZSCORE', KEYS[7], name)
  if not cur or tonumber(cur) ~= tonumber(ARGV[3]) then return {'moved', cur or '-1'} end
  if def ~= ARGV[2] then return {'changed', ''} end
  for i = 8, #ARGV, 3 do
    if tonumber(ARGV[i]) > now then return {'early', string.format('%d', now)} end
  end
end

-- The schedule's last run still waiting (pending, scheduled, retry) or running.
local function busy()
  local ok, last = pcall(redis.call, 'HGET', KEYS[8], name)
  if not ok or not last then return false end
  local ltid = string.match(last, '^[^|]*|(.*)$')
  if not ltid then return false end
  local rec = redis.call('HGET', KEYS[2], ltid)
  if not rec then return false end
  local st = string.sub(rec, 1, 1)
  return st == 'p' or st == 'k' or st == 's' or st == 'r'
end

local fired, skipped, woke = 0, 0, false
local marker = 10
for i = 8, #ARGV, 3 do
  local tick, tid, blob = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local outcome
  if ARGV[5] == '1' and busy() then
    outcome = 'skipped'
    skipped = skipped + 1
  else
    local status = enqueue_check(KEYS[2], false, KEYS[marker], tid, {})
    if status then
      outcome = status  -- exists / processed: this tick already ran
    else
      local _, _, w = enqueue_write(KEYS[1], KEYS[2], KEYS[3], '', KEYS[4], false, tid, blob,
                                    ARGV[7], -1, -1, 0, ARGV[6])
      woke = woke or w
      pcall(redis.call, 'HSET', KEYS[8], name, tick .. '|' .. tid)
      fired = fired + 1
      outcome = 'fired'
    end
  end
  -- pcall: a log or last-run key someone overwrote must not fail the script half-way
  -- (a run enqueued, its schedule not advanced); these are for people, not for firing.
  pcall(redis.call, 'LPUSH', KEYS[9],
        table.concat({tick, string.format('%d', now), outcome, tid}, '|'))
  marker = marker + 1
end
pcall(redis.call, 'LTRIM', KEYS[9], 0, 19)
if not trigger then redis.call('ZADD', KEYS[7], ARGV[4], name) end
if woke then wake_workers(KEYS[5], ARGV[6]) end
return {'fired', fired, skipped}
