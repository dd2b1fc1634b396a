-- take: one request's slot in the fleet's rate budget, outside a claim.
--
-- KEYS  1 window, 2 pause
-- ARGV  1 allowance, 2 window_ms (see budget.lua)
-- Answer: 0 when granted, else the milliseconds to wait.

return take_budget(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
