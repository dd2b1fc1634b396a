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
-- Answer: a FinishAnswer as JSON: whether this call finished the entry (false when it had
-- been finished already), and what could not be done because a key holds something else
-- than the ledger keeps there (that part is skipped; everything else is done).
-- key_type()/wrong_type() come from types.lua, loaded in front of this file.

local result_key, intents, reply_key = KEYS[1], KEYS[2], KEYS[3]
local lease_key, queue_key, dead_key = KEYS[4], KEYS[5], KEYS[6]
local args = cjson.decode(ARGV[1])
local result, dead_letter = ARGV[2], ARGV[3]

-- Every key is checked before the first write, so the script cannot fail half way.
local skipped = {}
local function usable(key, wanted, what)
  local found = wrong_type(key, wanted)
  if found then table.insert(skipped, what .. ': ' .. key .. ' holds a ' .. found) end
  return found == nil
end
local can_store = usable(result_key, 'string', 'store')
local can_reply = args.reply and usable(reply_key, 'stream', 'reply')
local can_lease = usable(lease_key, 'string', 'lease')
local can_queue = args.ordered and usable(queue_key, 'list', 'queue')
local can_dead = dead_letter ~= '' and usable(dead_key, 'stream', 'dead letter')
local function answer(done)
  -- By hand: cjson would write an empty list as {}.
  local list = #skipped > 0 and cjson.encode(skipped) or '[]'
  return '{"done":' .. tostring(done) .. ',"skipped":' .. list .. '}'
end

local held = can_lease and redis.call('GET', lease_key) == args.owner
if args.entry_id ~= '' and redis.call('XACK', intents, args.group, args.entry_id) == 0 then
  if held then redis.call('DEL', lease_key) end
  return answer(false)
end
-- The stored result is what every delivery is answered with, except for an entry whose
-- request ID is not to be trusted (store false): it gets its own answer only.
local stored = can_store and args.store and redis.call('GET', result_key)
if not stored then
  stored = result
  if can_store and args.store then redis.call('SET', result_key, stored, 'EX', args.ttl_s) end
end
if can_reply then
  redis.call('XADD', reply_key, 'MAXLEN', '~', args.reply_maxlen, '*', 'v', args.version, 'r', stored)
  redis.call('EXPIRE', reply_key, args.ttl_s)
end
if held then redis.call('DEL', lease_key) end
if can_queue then redis.call('LREM', queue_key, 1, args.entry_id) end
if can_dead then
  redis.call('XADD', dead_key, '*', 'entry', args.entry_id, 'record', dead_letter)
end
return answer(true)
