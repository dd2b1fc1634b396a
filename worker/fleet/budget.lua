-- take_budget(): one request's token from the fleet's rate budget (worker/fleet/budget.py).
-- Loaded in front of the scripts that take from the budget: worker/fleet/take.lua, and
-- the ledger's claim (so an intent's first request costs no extra round trip).
--
-- bucket    the token bucket (a hash: tokens, at)
-- pause     set after a 429: nothing is granted while it lives
-- capacity  the bucket's size; refill: tokens per ms; reserve: tokens this request
--           must leave in the bucket (its priority)
-- Answer: 0 when granted, else the milliseconds to wait before asking again.

local function take_budget(bucket, pause, capacity, refill, reserve)
  local paused = redis.call('PTTL', pause)
  if paused > 0 then return paused end
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local state = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens = tonumber(state[1]) or capacity
  local at = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - at) * refill)
  local ttl = math.ceil(capacity / refill) * 2 + 1000
  if tokens - 1 < reserve then
    redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', now)
    redis.call('PEXPIRE', bucket, ttl)
    return math.max(1, math.ceil((reserve + 1 - tokens) / refill))
  end
  redis.call('HSET', bucket, 'tokens', tostring(tokens - 1), 'at', now)
  redis.call('PEXPIRE', bucket, ttl)
  return 0
end
