-- apply: one change to an account's mirror, and its event, in one step (worker/mirror/store.py).
--
-- KEYS  1 view       the mirror's hash for this kind (orders, positions, trades, account)
--       2 meta       what the mirror has seen of each thing: "<at>|<identity>"
--       3 events     the account's events stream
--       4 open       the account's working orders (orders only)
--       5 unseen     accepted orders the mirror had not seen yet (orders only)
-- ARGV  1 ApplyArgs as JSON (worker/mirror/store.py)
-- Answer: the new event's stream ID, or false when the change is not new: the same change
-- seen before (a hub push and a reconciliation finding the same state, a leader and its
-- successor both writing), or older than what the mirror holds (it never rolls back).
-- wrong_type() comes from worker/ledger/types.lua, loaded in front of this file.

local view, meta, events, open, unseen = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local args = cjson.decode(ARGV[1])

for _, check in ipairs({
  {view, 'hash'}, {meta, 'hash'}, {events, 'stream'}, {open, 'hash'}, {unseen, 'hash'}
}) do
  local found = wrong_type(check[1], check[2])
  if found then return redis.error_reply('WRONGTYPE ' .. check[1] .. ' holds a ' .. found) end
end

if args.open ~= '' then
  -- The mirror has seen this order now: the risk check counts it from here on.
  redis.call('HDEL', unseen, args.field)
end

local seen = redis.call('HGET', meta, args.seen)
if seen then
  local bar = string.find(seen, '|', 1, true)
  if string.sub(seen, bar + 1) == args.identity then return false end
  if args.at < tonumber(string.sub(seen, 1, bar - 1)) then return false end
end

redis.call('HSET', meta, args.seen, string.format('%d', args.at) .. '|' .. args.identity)
redis.call('PEXPIRE', meta, args.ttl_ms)
if args.view == '' then
  redis.call('HDEL', view, args.field)
else
  redis.call('HSET', view, args.field, args.view)
  redis.call('PEXPIRE', view, args.ttl_ms)
end
if args.open == 'set' then
  redis.call('HSET', open, args.field, args.view)
  redis.call('PEXPIRE', open, args.ttl_ms)
elseif args.open == 'del' then
  redis.call('HDEL', open, args.field)
end
-- Retention is by time: entries older than min_id go (in whole nodes, hence '~').
local id = redis.call('XADD', events, 'MINID', '~', args.min_id, '*', 'v', '1', 'e', args.event)
redis.call('PEXPIRE', events, args.ttl_ms)
return id
