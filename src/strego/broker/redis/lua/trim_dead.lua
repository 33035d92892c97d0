-- Trim dead letters by age and count on a timer (dead.lua also trims when one arrives),
-- and result-waiter registrations whose lease lapsed (watch.lua also trims them).
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 max dead  2 dead ttl ms
-- Returns how many were past their age (at most 100 a call).
trim_waiters(KEYS[Q.waiters], now_ms())
return trim_dead(KEYS[Q.dead], KEYS[Q.index], KEYS[Q.bodies], now_ms(), tonumber(ARGV[2]),
                 tonumber(ARGV[1]))
