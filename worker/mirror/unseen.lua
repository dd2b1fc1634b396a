-- unseen: a new order the broker accepted, counted by the risk check until the mirror has
-- it (worker/mirror/exposure.py). Nothing to note when the hub was quicker than the answer.
--
-- KEYS  1 orders   the account's mirrored orders
--       2 unseen   accepted orders not mirrored yet
-- ARGV  1 order ID, 2 "<contract>|<signed size>|<epoch ms>", 3 time to live (ms)
-- Answer: 1 noted, 0 already mirrored.

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
