-- claim: before a worker acts on a request (worker/ledger/__init__.py). One atomic step.
--
-- KEYS  1 result      the request's stored result
--       2 lease       who is executing the request
--       3 claims      the request's history (each claim and recorded error)
--       4 queue       the order's follow-up queue (the lease key when there is none)
--       5 halt_all    the kill switch for every account
--       6 halt_one    the kill switch for the intent's account
--       7 budget      the login's rate-budget window (a sorted set)
--       8 pause       the fleet-wide pause after a 429
--       9 reply       the producer's reply stream (the result key when there is none)
-- ARGV  1 ClaimArgs as JSON (worker/ledger/protocol.py)
-- Answer: a ClaimAnswer as JSON, tagged by "state".
-- key_type()/wrong_type() come from types.lua and take_budget() from
-- worker/fleet/budget.lua, loaded in front of this file.

local result_key, lease_key, claims_key, queue_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local halt_all, halt_one, budget_key, pause_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local reply_key = KEYS[9]
local args = cjson.decode(ARGV[1])

-- Nothing is written until every key is what the ledger keeps there.
local checks = {{result_key, 'string'}, {lease_key, 'string'}, {claims_key, 'list'}}
if args.reply then table.insert(checks, {reply_key, 'stream'}) end
if args.ordered then table.insert(checks, {queue_key, 'list'}) end
if args.budget ~= cjson.null then table.insert(checks, {budget_key, 'zset'}) end
for _, check in ipairs(checks) do
  local found = wrong_type(check[1], check[2])
  if found then
    return cjson.encode({state = 'conflict', key = check[1], found = found, wanted = check[2]})
  end
end

local stored = redis.call('GET', result_key)
if stored then
  local readable, decoded = pcall(cjson.decode, stored)
  if not readable or type(decoded) ~= 'table' then
    return cjson.encode({state = 'conflict', key = result_key, found = 'unreadable text',
                         wanted = 'a stored result'})
  end
  return '{"state":"done","stored":' .. stored .. '}'
end

local holder = redis.call('GET', lease_key)
if holder and holder ~= args.owner then
  return cjson.encode({state = 'busy', holder = holder})
end

if args.ordered then
  local head = redis.call('LINDEX', queue_key, 0)
  if head and head ~= args.entry_id and redis.call('LPOS', queue_key, args.entry_id) then
    return cjson.encode({state = 'wait', head = head})
  end
end

if args.new_order then
  -- Any key halts; one that holds something else than a record still says so.
  for _, halt in ipairs({halt_all, halt_one}) do
    local found = key_type(halt)
    if found == 'string' then
      return cjson.encode({state = 'halted', record = redis.call('GET', halt)})
    elseif found ~= 'none' then
      return cjson.encode({state = 'halted', record = 'the kill switch key holds a ' .. found})
    end
  end
end

local prepaid = false
if args.budget ~= cjson.null then
  local b = args.budget
  local wait = take_budget(budget_key, pause_key, b.allowance, b.window_ms)
  if wait > 0 then return '{"state":"throttle","wait_ms":' .. string.format('%d', wait) .. '}' end
  prepaid = true
end

redis.call('SET', lease_key, args.owner, 'PX', args.lease_ms)
local n = redis.call('RPUSH', claims_key, args.note)
redis.call('EXPIRE', claims_key, args.history_ttl_s)
return '{"state":"go","claims":' .. n .. ',"prepaid":' .. tostring(prepaid) .. '}'
