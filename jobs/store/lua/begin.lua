-- A worker takes a pending job: it becomes active (H.fields), unless its type's limit holds it back.
-- H (beside common.lua's): fields, logs, intermediate (the RQ list the worker took it into),
--   concurrency (at most this many of its type active, absent = no limit),
--   rate, per_ms (at most `rate` starts per `per_ms`, absent = no limit), starts_key, slot_key,
--   waiting (JSON actions)
local raw = redis.call('HGET', KEYS[1], 'status')
if not raw then return {'missing', ''} end
local status = unquote(raw)
if status ~= H.pending then return {'conflict', status} end
local jtype = unquote(redis.call('HGET', KEYS[1], 'type'))

local function hold(action)
  redis.call('LREM', H.intermediate, 1, H.id)
  if redis.call('HGET', KEYS[1], 'action') == action then return {'held', status} end
  H.fields = {action = action}
  H.logs = {}
  change(status)  -- the job says why it waits; its status stays pending
  return {'held', status}
end

if H.concurrency and redis.call('SCARD', H.running_prefix .. jtype) >= H.concurrency then
  redis.call('ZADD', H.held_prefix .. jtype, 'NX', H.now_ms, H.id)
  return hold(H.waiting.concurrency)
end
if H.rate then
  redis.call('ZREMRANGEBYSCORE', H.starts_key, '-inf', H.now_ms - H.per_ms)
  if redis.call('ZCARD', H.starts_key) >= H.rate then
    local oldest = redis.call('ZRANGE', H.starts_key, 0, 0, 'WITHSCORES')
    local slot = tonumber(oldest[2]) + H.per_ms  -- when the window has room again
    if redis.call('HGET', KEYS[1], 'action') ~= H.waiting.rate then
      -- A new arrival gets its own start time, per_ms / rate after the previous one's: a backlog comes back
      -- as fast as it may start, not all of it at once every window ahead of other types' jobs.
      slot = math.max(slot, tonumber(redis.call('GET', H.slot_key) or 0))
      redis.call('SET', H.slot_key, slot + math.ceil(H.per_ms / H.rate), 'PX', slot - H.now_ms + H.per_ms)
    end
    -- One back at its time that still finds the window full (the start before it ran late) keeps its place:
    -- it waits only until the window frees.
    redis.call('ZADD', H.scheduled_key, slot, H.id)
    return hold(H.waiting.rate)
  end
  redis.call('ZADD', H.starts_key, H.now_ms, H.id .. ':' .. H.now_ms)
  redis.call('PEXPIRE', H.starts_key, H.per_ms)
end
redis.call('LREM', H.intermediate, 1, H.id)  -- taken: RQ leaves it there when a worker has several queues
return change(status)
