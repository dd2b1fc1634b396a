-- finish: store, reply, acknowledge (worker/ledger/__init__.py). One atomic step.
--
-- KEYS  1 result      the request's stored result
--       2 intents     the intents stream
--       3 reply       the producer's reply stream (the intents key when there is none)
--       4 lease       who is executing the request
--       5 queue       the order's follow-up queue (the lease key when there is none)
--       6 dead        the dead-letter stream
-- ARGV  1 FinishArgs as JSON (worker/ledger/protocol.py)
--       2 the result, encoded as it is stored and sent
--       3 a dead-letter record (JSON), or '' to keep the entry out of the dead letters
-- Answer: 1 when this call finished the entry, 0 when it had been finished already.

local result_key, intents, reply_key = KEYS[1], KEYS[2], KEYS[3]
local lease_key, queue_key, dead_key = KEYS[4], KEYS[5], KEYS[6]
local args = cjson.decode(ARGV[1])
local result, dead_letter = ARGV[2], ARGV[3]

local held = redis.call('GET', lease_key) == args.owner
if args.entry_id ~= '' and redis.call('XACK', intents, args.group, args.entry_id) == 0 then
  if held then redis.call('DEL', lease_key) end
  return 0
end
local stored = redis.call('GET', result_key)
if not stored then
  stored = result
  if args.store then redis.call('SET', result_key, stored, 'EX', args.ttl_s) end
end
if args.reply then
  redis.call('XADD', reply_key, 'MAXLEN', '~', args.reply_maxlen, '*', 'v', args.version, 'r', stored)
  redis.call('EXPIRE', reply_key, args.ttl_s)
end
if held then redis.call('DEL', lease_key) end
if args.ordered then redis.call('LREM', queue_key, 1, args.entry_id) end
if dead_letter ~= '' then
  redis.call('XADD', dead_key, '*', 'entry', args.entry_id, 'record', dead_letter)
end
return 1
