-- take_budget(): one request's slot in the fleet's rate budget (worker/fleet/budget.py).
-- Loaded in front of the scripts that take from the budget: worker/fleet/take.lua, and
-- the ledger's claim (so an intent's first request costs no extra round trip).
--
-- window     a sorted set of the login's sends: member "<ms>.<n>", score the send's ms
-- pause      set after a 429: nothing is granted while it lives
-- allowance  how many sends in the window this request may find and still go (the
--            window's capacity less the reserve of the priorities above it)
-- window_ms  how long a send counts (the gateway's window and a pad for arrival jitter)
-- Answer: 0 when granted, else the milliseconds to wait before asking again.

local function take_budget(window, pause, allowance, window_ms)
  local paused = redis.call('PTTL', pause)
  if paused > 0 then return paused end
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', window, '-inf', now - window_ms)
  local used = redis.call('ZCARD', window)
  if used >= allowance then
    -- Room comes back when enough of the oldest sends have left the window.
    local due = redis.call('ZRANGE', window, used - allowance, used - allowance, 'WITHSCORES')
    return math.max(1, tonumber(due[2]) + window_ms - now + 1)
  end
  -- Sends of the same millisecond are told apart by how many came before in it (the
  -- trim never touches this millisecond, so the count only grows).
  local n = redis.call('ZCOUNT', window, now, now)
  redis.call('ZADD', window, now, now .. '.' .. n)
  redis.call('PEXPIRE', window, window_ms + 1000)
  return 0
end
