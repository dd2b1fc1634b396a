-- retry a dead letter: put its intent back on the intents stream as a new entry and
-- remove it from the dead letters (worker/ops/deadletters.py). One atomic step, so two
-- operators retrying the same dead letter at once add it once, and the stored-result
-- check cannot race the re-add. A follow-up (modify, cancel) joins its order's queue as
-- the producer's own submit does, so it keeps its turn among them.
--
-- KEYS  1 intents     the intents stream
--       2 dead        the dead-letter stream
--       3 result      the request's stored result
--       4 queue       the order's follow-up queue (the intents key for a place)
-- ARGV  1 RetryArgs as JSON (worker/ops/deadletters.py)
-- Answer: {'ok', new entry ID} | {'gone', ''} | {'answered', stored result}

local intents, dead, result_key, queue_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local args = cjson.decode(ARGV[1])

if #redis.call('XRANGE', dead, args.dead_id, args.dead_id) == 0 then return {'gone', ''} end
if args.force then
  redis.call('DEL', result_key)
else
  local stored = redis.call('GET', result_key)
  if stored then return {'answered', stored} end
end
local id = redis.call('XADD', intents, '*', 'v', args.version, 'd', args.data)
if args.follow_up then
  redis.call('RPUSH', queue_key, id)
  redis.call('EXPIRE', queue_key, args.queue_ttl_s)
end
redis.call('XDEL', dead, args.dead_id)
return {'ok', id}
