-- submit a follow-up (modify, cancel): add it to the intents stream and queue its entry
-- ID under its order, in one step, so workers apply an order's follow-ups in submission
-- order (worker/ledger/claim.lua reads the queue).
--
-- KEYS  1 intents     the intents stream
--       2 queue       the order's follow-up queue
-- ARGV  1 contract version, 2 the intent (JSON), 3 the queue's lifetime (s)
-- Answer: the new entry's ID.

local id = redis.call('XADD', KEYS[1], '*', 'v', ARGV[1], 'd', ARGV[2])
redis.call('RPUSH', KEYS[2], id)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return id
