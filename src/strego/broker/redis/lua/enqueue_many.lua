-- Enqueue many tasks of one queue in one call (enqueue_many): each task exactly as
-- enqueue.lua would, in order, so a repeat of a unique key inside the batch is a
-- duplicate. All checks run before any write: the call is all-or-nothing.
-- KEYS: 1..11 streams by band  12 index  13 bodies  14 scheduled  15 stats  16 idle,
--       then the unique keys and processed markers the tasks use (referenced by position)
-- ARGV: 1 channel, then 8 values per task: task id, blob, band, delay ms (-1: none),
--       process_at ms (-1: none), unique ttl ms, unique key position (0: none),
--       processed marker position (0: none)
-- Returns a flat list: status, ref for each task (see enqueue.lua).
local out = {}
local claimed = {}
local function key_at(position)
  if position == '0' then return false end
  return KEYS[tonumber(position)]
end
for i = 2, #ARGV, 8 do
  local status, ref = enqueue_check(KEYS[12], key_at(ARGV[i + 6]), key_at(ARGV[i + 7]),
                                    ARGV[i], claimed)
  out[#out + 1] = status or false
  out[#out + 1] = ref or false
end
local woke = false
for i = 2, #ARGV, 8 do
  local slot = (i - 2) / 8 * 2 + 1
  if not out[slot] then
    local band = ARGV[i + 2]
    local status, ref, added = enqueue_write(KEYS[tonumber(band) + 1], KEYS[12], KEYS[13],
      KEYS[14], KEYS[15], key_at(ARGV[i + 6]), ARGV[i], ARGV[i + 1], band,
      tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[1])
    out[slot], out[slot + 1] = status, ref
    woke = woke or added
  end
end
if woke then wake_workers(KEYS[16], ARGV[1]) end
return out
