-- The worker's one round trip per job: end the job it ran (H.done) and take the next one (H.take), as BullMQ's
-- moveToFinished does. Either part may be absent.
-- H.done (beside a change's fields, see common.lua's `apply`): rq ("delete" | "failed" | "retry": what becomes of
--   RQ's copy), rq_registry (RQ's failed registry of its queue), alive (its worker wrote a sign of life)
-- H.take: worker (name), worker_json, worker_key (RQ's hash of the worker), current_job (its field that names the
--   job), started_at (JSON), id (take this job
--   instead of the next in line: a test's begin)
-- Returns {done's {'ok', event id, snapshot, the snapshots of the dependents its end released or canceled} or
--   {why, status} or false, take's reply or false}, where take's reply
--   is {'ok', id, event id, snapshot, RQ's job hash (flat), scheduled_for, created_at, backoff, retry_budget},
--   {'paused'}, {'empty'} or {why, status} for a given id that could not begin.

local function finish(D)
  local reply = told(apply(D))
  if reply[1] ~= 'ok' then return reply end
  local rq_key = H.rq_job_prefix .. D.id
  if D.alive then redis.call('DEL', H.alive_prefix .. D.id) end
  if D.rq == 'delete' then
    redis.call('DEL', rq_key)
  elseif D.rq == 'failed' then  -- kept as RQ keeps a failed job, until jobstream deletes the job
    redis.call('HSET', rq_key, 'status', H.rq_failed)
    redis.call('EXPIRE', rq_key, H.failure_ttl)
    redis.call('ZADD', D.rq_registry, H.now_ms / 1000 + H.failure_ttl, D.id)
  elseif D.rq == 'retry' then
    redis.call('HSET', rq_key, 'status', H.rq_scheduled)
    redis.call('PERSIST', rq_key)
  end
  return reply
end

-- Leave a popped job pending, saying why it waits, in the scheduled set (`at`) or the held set (no `at`).
local function hold(id, status, jtype, action, current_action, at)
  if at then redis.call('ZADD', H.scheduled_key, at, id) else redis.call('ZADD', H.held_prefix .. jtype, 'NX', H.now_ms, id) end
  if current_action ~= action then
    change({id = id, event = H.job_update, mode = 'update', fields = {action = action}, logs = {}}, status, jtype)
  end
end

-- When its type's limit allows it, the start time of a rate-limited job to wait for, or true to hold it until a
-- running one of its type ends; nil when it may start now (and then the start is counted).
local function limited(id, jtype, current_action)
  local limit = H.limits[jtype]
  if not limit then return nil end
  if limit.concurrency and redis.call('SCARD', H.running_prefix .. jtype) >= limit.concurrency then
    return true, limit.waiting_concurrency
  end
  if limit.rate then
    redis.call('ZREMRANGEBYSCORE', limit.starts_key, '-inf', H.now_ms - limit.per_ms)
    if redis.call('ZCARD', limit.starts_key) >= limit.rate then
      local oldest = redis.call('ZRANGE', limit.starts_key, 0, 0, 'WITHSCORES')
      local slot = tonumber(oldest[2]) + limit.per_ms  -- when the window has room again
      if current_action ~= limit.waiting_rate then
        -- A new arrival gets its own start time, per_ms / rate after the previous one's: a backlog comes back
        -- as fast as it may start, not all of it at once every window ahead of other types' jobs.
        slot = math.max(slot, tonumber(redis.call('GET', limit.slot_key) or 0))
        local next_slot = slot + math.ceil(limit.per_ms / limit.rate)
        redis.call('SET', limit.slot_key, next_slot, 'PX', slot - H.now_ms + limit.per_ms)
      end
      -- One back at its time that still finds the window full (the start before it ran late) keeps its place:
      -- it waits only until the window frees.
      return slot, limit.waiting_rate
    end
    redis.call('ZADD', limit.starts_key, H.now_ms, id .. ':' .. H.now_ms)
    redis.call('PEXPIRE', limit.starts_key, limit.per_ms)
  end
  return nil
end

-- Begin `id`, popped off its queue: {'ok', ...} as above, or {why, status} when it may not start now.
local function begin(T, id)
  local current = redis.call('HMGET', job_key(id), 'status', 'type', 'scheduled_for', 'created_at', 'action',
    'backoff', 'retry_budget')
  if not current[1] then  -- not created through jobstream, or deleted: never run it
    redis.call('DEL', H.rq_job_prefix .. id)
    return {'missing', ''}
  end
  local status = unquote(current[1])
  if status ~= H.pending then return {'conflict', status} end  -- queued twice: the worker that has it runs it
  local jtype = unquote(current[2])
  local wait, action = limited(id, jtype, current[5])
  if wait then
    hold(id, status, jtype, action, current[5], wait ~= true and wait or nil)
    return {'held', status}
  end
  local J = {id = id, event = H.job_update, mode = 'update', logs = {'started on ' .. T.worker}, fields = {
    status = H.active_json, worker = T.worker_json, started_at = T.started_at, scheduled_for = 'null',
    progress = '0', action = 'null'}}
  local reply = change(J, status, jtype, true)
  redis.call('HSET', T.worker_key, 'state', H.rq_busy, T.current_job, id)
  return {'ok', id, reply[2], reply[3], redis.call('HGETALL', H.rq_job_prefix .. id), current[3] or 'null',
    current[4] or 'null', current[6] or 'null', current[7] or 'null'}
end

local function take(T)
  if T.id then
    local priority = unquote(redis.call('HGET', job_key(T.id), 'priority'))
    redis.call('LREM', H.queue_keys[priority] or H.queue_keys.normal, 1, T.id)
    return begin(T, T.id)
  end
  if redis.call('EXISTS', H.suspended_key) == 1 then return {'paused'} end
  for _ = 1, H.take_tries do  -- jobs that their type's limit holds back are passed over, a few per call
    local id = nil
    for _, key in ipairs(H.queue_order) do
      id = redis.call('LPOP', key)
      if id then break end
    end
    if not id then return {'empty'} end
    for _, key in ipairs(H.queue_order) do  -- more for the idle workers: wake one
      if redis.call('LLEN', key) > 0 then arm(); break end
    end
    local reply = begin(T, id)
    if reply[1] == 'ok' then return reply end
  end
  return {'empty'}
end

local done = H.done and finish(H.done) or false
return {done, H.take and take(H.take) or false}
