-- key_type() and wrong_type(): what a key holds, and whether it holds something else than
-- the ledger keeps there (worker/ledger/__init__.py). Loaded in front of each ledger
-- script, which checks every key it will touch before its first write: a script either
-- does everything or nothing, since Redis does not roll a script back when it fails.

local function key_type(key)
  local found = redis.call('TYPE', key)
  return found.ok or found  -- a status reply is a table in Redis' Lua
end

local function wrong_type(key, wanted)
  local found = key_type(key)
  if found ~= 'none' and found ~= wanted then return found end
  return nil
end
