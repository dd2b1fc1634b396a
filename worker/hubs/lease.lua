-- lease: renew or release a leader lease, only if this worker still holds it
-- (worker/hubs/leader.py). A lease that expired and was taken is not ours any more.
--
-- KEYS  1 the lease
-- ARGV  1 the holder's name, 2 'renew' or 'release', 3 the lease's time to live (ms)
-- Answer: 1 when done, 0 when the lease is not ours.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('DEL', KEYS[1])
end
return 1
