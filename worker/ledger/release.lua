-- release: give a lease back without finishing, if it is still ours.
--
-- KEYS  1 lease
-- ARGV  1 the owner this worker holds it as
-- Answer: 1 when released, 0 when the lease was not ours.

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
