-- release: give a lease back without finishing, if it is still ours.
--
-- KEYS  1 lease
-- ARGV  1 the owner this worker holds it as
-- Answer: 1 when released, 0 when the lease was not ours.
-- key_type()/wrong_type() come from types.lua, loaded in front of this file.

if wrong_type(KEYS[1], 'string') then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
