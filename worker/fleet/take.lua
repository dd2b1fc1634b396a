-- take: one request's token from the fleet's rate budget, outside a claim.
--
-- KEYS  1 budget, 2 pause
-- ARGV  1 capacity, 2 refill per ms, 3 reserve (see budget.lua)
-- Answer: 0 when granted, else the milliseconds to wait.

return take_budget(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
