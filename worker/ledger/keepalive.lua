-- keepalive: while requests run, renew each lease still ours and reset the idle time of
-- each entry still pending on us, so a live worker's entries are not reclaimed.
--
-- KEYS  1 intents     the intents stream
-- ARGV  1 KeepaliveArgs as JSON (worker/ledger/protocol.py)
-- Answer: the entries whose lease another worker holds now.
-- key_type()/wrong_type() come from types.lua, loaded in front of this file.

local intents = KEYS[1]
local args = cjson.decode(ARGV[1])
local lost = {}
for _, item in ipairs(args.running) do
  local id, lease, owner = item[1], item[2], item[3]
  -- pcall: with the group gone (a Redis restarted empty) there is nothing to reset; the
  -- read loop creates the group again.
  local pending = redis.pcall('XPENDING', intents, args.group, id, id, 1, args.consumer)
  if type(pending) == 'table' and not pending.err and #pending > 0 then
    redis.call('XCLAIM', intents, args.group, args.consumer, 0, id, 'JUSTID')
  end
  if lease ~= '' and not wrong_type(lease, 'string') then
    local holder = redis.call('GET', lease)
    if holder == owner then
      redis.call('PEXPIRE', lease, args.lease_ms)
    elseif holder then
      table.insert(lost, id)
    end
  end
end
return lost
