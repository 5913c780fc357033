-- Shared by every event script: the header, the event, and the bookkeeping of a status change.
-- H is the call's header (one JSON object in ARGV[1]). Key names, event and status names come from Python.
-- A job's change is described by a table J: {id, fields (name -> JSON value), logs (lines), mode ("create" |
-- "update"), event, schedule_at (ms, optional)}.
local H = cjson.decode(ARGV[1])

local function unquote(json_string)
  return json_string and string.sub(json_string, 2, -2) or ''
end

local function member(value, list)
  for _, each in ipairs(list) do if each == value then return true end end
  return false
end

local function job_key(id) return H.job_prefix .. id end
local function logs_key(id) return H.job_prefix .. id .. H.logs_suffix end
local function dependents_key(id) return H.job_prefix .. id .. H.dependents_suffix end

-- A list of ids as the job hash holds it (cjson writes an empty table as an object).
local function id_list(ids)
  return #ids == 0 and '[]' or cjson.encode(ids)
end

-- The message is "<event id>\n<event name>\n<json data>", so a subscriber frames it without parsing the JSON.
local function emit(id, event, data)
  local xid = redis.call('XADD', H.events_key, 'MAXLEN', '~', H.replay_max, '*', 'job', id, 'event', event, 'data', data)
  redis.call('PUBLISH', H.channel_prefix .. id .. H.channel_suffix, xid .. '\n' .. event .. '\n' .. data)
  return xid
end

-- How many jobs have each status, as the events that change it carry them: {"pending":3,...}. Kept as counters
-- beside the status sets (one HGETALL instead of a ZCARD per status); `jobstream:counts` is rebuilt from the
-- sets by Python when it is missing (an upgrade, a restore).
local function counts()
  local flat = redis.call('HGETALL', H.counts_key)
  local by = {}
  for i = 1, #flat, 2 do by[flat[i]] = flat[i + 1] end
  local parts = {}
  for i, status in ipairs(H.statuses) do parts[i] = '"' .. status .. '":' .. (by[status] or '0') end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Wake one idle worker, unless one is woken already.
local function arm()
  if redis.call('LLEN', H.wake_key) == 0 then redis.call('RPUSH', H.wake_key, '1') end
end

-- Write RQ's copy of a new job: its `data` (RQ's bytes), the shape's constant fields `rq`, and `status` (enqueued
-- now when it is RQ's queued).
local function rq_copy(id, data, status, rq)
  local key = H.rq_job_prefix .. id
  redis.call('HSET', key, 'data', data, 'created_at', H.rq_now, 'status', status, unpack(rq))
  if status == H.rq_queued then redis.call('HSET', key, 'enqueued_at', H.rq_now) end
end

-- Put `id` back in its priority's queue (a job waiting for a limit or a time) and wake an idle worker.
local function requeue(id)
  local priority = unquote(redis.call('HGET', job_key(id), 'priority'))
  redis.call('RPUSH', H.queue_keys[priority] or H.queue_keys.normal, id)
  redis.call('HSET', H.rq_job_prefix .. id, 'status', H.rq_queued)
  arm()
end

-- Hand the oldest job held back by `jtype`'s concurrency limit to the workers again.
local function release(jtype)
  local held = redis.call('ZPOPMIN', H.held_prefix .. jtype)
  if held[1] then requeue(held[1]) end
end

-- Leave a failure group (a failed job retried, or deleted): its group's count and members.
local function unfailed(id)
  local group = redis.call('HGET', job_key(id), 'failure_group')
  if not group then return end
  redis.call('HDEL', job_key(id), 'failure_group')
  redis.call('ZREM', H.failure_prefix .. group, id)
  if redis.call('ZINCRBY', H.failure_groups_key, -1, group) + 0 <= 0 then
    redis.call('ZREM', H.failure_groups_key, group)
    redis.call('HDEL', H.failure_meta_key, group)
  end
end

-- Every index that follows a job's status: by status, the counters (all and pending by type), ended-at
-- (retention), running (limits), waiting, failure groups. `popped`: a pending job taken off its queue, which is
-- in neither the scheduled nor the held set. J.failure ({key, meta}): the group of a job that fails now.
local function moved(J, jtype, old, new, popped)
  local id = J.id
  if old ~= '' then
    redis.call('ZREM', H.status_prefix .. old, id)
    redis.call('HINCRBY', H.counts_key, old, -1)
  end
  redis.call('ZADD', H.status_prefix .. new, 0, id)
  redis.call('HINCRBY', H.counts_key, new, 1)
  if new == H.pending then redis.call('HINCRBY', H.type_pending_key, jtype, 1) end
  if old == H.pending then redis.call('HINCRBY', H.type_pending_key, jtype, -1) end
  if member(new, H.ended) then
    if redis.call('INCR', H.ended_keys[new]) == 1 then redis.call('EXPIRE', H.ended_keys[new], H.ended_ttl) end
    redis.call('ZADD', H.ended_at_prefix .. new, H.now_ms, id)
  end
  if member(old, H.ended) then redis.call('ZREM', H.ended_at_prefix .. old, id) end
  if new == H.failed and J.failure then
    local group = J.failure.key
    redis.call('HSET', job_key(id), 'failure_group', group)
    redis.call('ZADD', H.failure_prefix .. group, H.now_ms, id)
    redis.call('ZINCRBY', H.failure_groups_key, 1, group)
    redis.call('HSET', H.failure_meta_key, group, J.failure.meta)
  end
  if old == H.failed then unfailed(id) end
  if new == H.active then redis.call('SADD', H.running_prefix .. jtype, id) end
  if old == H.active then
    redis.call('SREM', H.running_prefix .. jtype, id)
    redis.call('DEL', H.alive_prefix .. id)  -- its worker's sign that it runs
    local limit = H.limits[jtype]
    if limit and limit.concurrency then release(jtype) end
  end
  if old == H.pending and not popped then
    redis.call('ZREM', H.scheduled_key, id)
    redis.call('ZREM', H.held_prefix .. jtype, id)
  end
  if J.stat then  -- an end that the type's statistics count: one field of its minute's histogram
    local key = H.type_stats_prefix .. jtype .. ':' .. J.stat.minute
    if redis.call('HINCRBY', key, J.stat.field, 1) == 1 then redis.call('EXPIRE', key, H.ended_ttl) end
  end
end

-- The job's ApiJob snapshot (without the detail view's fields), as its events carry it.
local function snapshot_of(id)
  local values = redis.call('HMGET', job_key(id), unpack(H.snapshot))
  local parts = {}
  for i, name in ipairs(H.snapshot) do parts[i] = '"' .. name .. '":' .. (values[i] or 'null') end
  return '{' .. table.concat(parts, ',') .. '}'
end

local settled  -- a job's end reaching its dependents: defined below change(), which calls it
local followed = {}  -- the snapshots of the jobs that an end released or canceled, for the caller to tell

-- Set J.fields and J.logs on the job, keep the indexes, publish the job-update with the full snapshot; an end
-- then reaches the job's dependents. `old_status` and `jtype` are what the caller read of the job; returns
-- {'ok', event id, snapshot}.
local function change(J, old_status, jtype, popped)
  local key = job_key(J.id)
  local args = {}
  for name, value in pairs(J.fields) do args[#args + 1] = name; args[#args + 1] = value end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
  local new_status = J.fields.status and unquote(J.fields.status) or old_status
  if J.mode == 'create' then redis.call('ZADD', H.index_key, 0, J.id) end
  if new_status ~= old_status then moved(J, jtype, old_status, new_status, popped) end
  if J.schedule_at then redis.call('ZADD', H.scheduled_key, J.schedule_at, J.id) end

  local log_text = nil
  if #J.logs > 0 then
    if redis.call('RPUSH', logs_key(J.id), unpack(J.logs)) > H.max_logs then
      redis.call('LTRIM', logs_key(J.id), -H.max_logs, -1)
    end
    log_text = table.concat(J.logs, '\n')
  end

  local snapshot = snapshot_of(J.id)

  local data = '{"type":"' .. J.event .. '","job":' .. snapshot
  if log_text then data = data .. ',"log":' .. cjson.encode(log_text) end
  if new_status ~= old_status then data = data .. ',"counts":' .. counts() end
  data = data .. ',"timestamp":"' .. H.ts .. '"}'
  local xid = emit(J.id, J.event, data)
  if new_status ~= old_status and member(new_status, H.ended) then settled(J.id, new_status) end
  return {'ok', xid, snapshot}
end

-- Cancel the pending job `id` that may not run without a dependency that did not complete (`reason` names it);
-- its own dependents follow. One that a cascade already ended (a batch's item doomed twice) is left alone.
local function doom(id, jtype, reason)
  if unquote(redis.call('HGET', job_key(id), 'status')) ~= H.pending then return end
  redis.call('DEL', H.rq_job_prefix .. id)
  local reply = change({id = id, event = H.job_update, mode = 'update', logs = {'canceled: ' .. reason}, fields = {
    status = H.canceled_json, error = cjson.encode(reason), waiting_for = '[]', action = 'null',
    ended_at = '"' .. H.ts .. '"', cancel_requested = 'false', scheduled_for = 'null'}}, H.pending, jtype)
  followed[#followed + 1] = reply[3]
end

-- `child` waited for `parent`, which ended with `ended`: it counts that end (completed, or any end under
-- allow_failure) and goes where a new job would once it waits for nothing (its queue, or the scheduled set while
-- its delay lasts); else it is canceled, naming the parent. One that ended, or counted this end, is left alone.
local function follow(child, parent, ended)
  local current = redis.call('HMGET', job_key(child), 'status', 'waiting_for', 'allow_failure', 'type', 'start_at')
  if unquote(current[1]) ~= H.pending or not current[2] then return end
  local waiting, left = cjson.decode(current[2]), {}
  for _, each in ipairs(waiting) do if each ~= parent then left[#left + 1] = each end end
  if #left == #waiting then return end
  local J = {id = child, event = H.job_update, mode = 'update', logs = {}}
  if ended == H.completed or current[3] == 'true' then
    J.fields = {waiting_for = id_list(left)}
    local start = tonumber(current[5] or '')
    if #left == 0 then
      J.logs = {'released: its dependencies ended'}
      if start and start > H.now_ms then J.schedule_at = start end
    end
    followed[#followed + 1] = change(J, H.pending, unquote(current[4]))[3]
    if #left == 0 and not J.schedule_at then requeue(child) end
  else
    doom(child, unquote(current[4]), 'dependency ' .. parent .. ' ' .. ended)
  end
end

-- Ends not yet passed on to their dependents, in order: a cancel that ends dependents queues their ends here, and
-- the one loop below passes each on in turn (no recursion, however long the chain).
local ends, settling = {}, false

settled = function(id, status)
  if redis.call('EXISTS', dependents_key(id)) == 0 then return end  -- a job that none depends on: all it costs
  ends[#ends + 1] = {id, status}
  if settling then return end
  settling = true
  local at = 1
  while at <= #ends do
    local parent, ended = ends[at][1], ends[at][2]
    for _, child in ipairs(redis.call('SORT', dependents_key(parent), 'ALPHA')) do follow(child, parent, ended) end
    at = at + 1
  end
  ends, settling = {}, false
end

-- A change's reply with the snapshots of the jobs its end released or canceled (see `followed`).
local function told(reply)
  if reply[1] == 'ok' then reply[4] = followed end
  return reply
end

-- A guarded change of an existing job (J.guard: statuses allowed before, [] = any; J.worker: JSON of the worker
-- that must hold it, absent = any), or the creation of a new one (J.mode "create").
local function apply(J)
  local key = job_key(J.id)
  local current = redis.call('HMGET', key, 'status', 'type', 'worker')
  if J.mode == 'create' then
    if current[1] then return {'conflict', ''} end
    return change(J, '', unquote(J.fields.type))
  end
  if not current[1] then return {'missing', ''} end
  local old_status = unquote(current[1])
  if #J.guard > 0 and not member(old_status, J.guard) then return {'conflict', old_status} end
  if J.worker and current[3] ~= J.worker then return {'conflict', old_status} end
  return change(J, old_status, unquote(current[2]))
end
