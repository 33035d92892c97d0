-- Enqueue many tasks of one queue in one call (enqueue_many): each task exactly as
-- enqueue.lua would, in order, so a repeat of a unique key inside the batch is a
-- duplicate. One script call instead of one per task: ~6 arguments a task, not 17.
-- KEYS: 1..11 streams by band  12 index  13 bodies  14 scheduled  15 stats  16 idle,
--       then the unique keys and processed markers the tasks use (referenced by position)
-- ARGV: 1 channel, then 8 values per task: task id, blob, band, delay ms (-1: none),
--       process_at ms (-1: none), unique ttl ms, unique key position (0: none),
--       processed marker position (0: none)
-- Returns a flat list: status, ref for each task (see enqueue.lua).
local out = {}
local woke = false
for i = 2, #ARGV, 8 do
  local band = ARGV[i + 2]
  local unique, processed = false, false
  if ARGV[i + 6] ~= '0' then unique = KEYS[tonumber(ARGV[i + 6])] end
  if ARGV[i + 7] ~= '0' then processed = KEYS[tonumber(ARGV[i + 7])] end
  local status, ref, added = enqueue_one(KEYS[tonumber(band) + 1], KEYS[12], KEYS[13],
    KEYS[14], KEYS[15], unique, processed, ARGV[i], ARGV[i + 1], band,
    tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[1])
  out[#out + 1] = status
  out[#out + 1] = ref
  woke = woke or added
end
if woke then wake_workers(KEYS[16], ARGV[1]) end
return out
