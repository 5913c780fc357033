-- Shared by every event script: the header, the event, and the bookkeeping of a status change.
-- H is the call's header (one JSON object in ARGV[1]); KEYS[1] is the job's hash, KEYS[2] its logs,
-- KEYS[3] the index of every job, KEYS[4] the replay stream. Key names and event names come from Python.
local H = cjson.decode(ARGV[1])

local function unquote(json_string)
  return json_string and string.sub(json_string, 2, -2) or ''
end

local function member(value, list)
  for _, each in ipairs(list) do if each == value then return true end end
  return false
end

-- The message is "<event id>\n<event name>\n<json data>", so a subscriber frames it without parsing the JSON.
local function emit(event, data)
  local xid = redis.call('XADD', KEYS[4], 'MAXLEN', '~', H.replay_max, '*', 'job', H.id, 'event', event, 'data', data)
  redis.call('PUBLISH', H.channel, xid .. '\n' .. event .. '\n' .. data)
  return xid
end

local function job_key(id) return H.job_prefix .. id end

-- How many jobs have each status, as the events that change it carry them: {"pending":3,...}
local function counts()
  local parts = {}
  for i, status in ipairs(H.statuses) do
    parts[i] = '"' .. status .. '":' .. redis.call('ZCARD', H.status_prefix .. status)
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Put `id` back in its priority's queue (a job waiting for a limit or a time) and wake an idle worker.
local function requeue(id)
  local priority = unquote(redis.call('HGET', job_key(id), 'priority'))
  redis.call('RPUSH', H.queue_keys[priority] or H.queue_keys.normal, id)
  redis.call('HSET', H.rq_job_prefix .. id, 'status', H.rq_queued)
  redis.call('RPUSH', H.wake_key, '1')
  redis.call('LTRIM', H.wake_key, -1, -1)
end

-- Hand the oldest job held back by `jtype`'s concurrency limit to the workers again.
local function release(jtype)
  local held = redis.call('ZPOPMIN', H.held_prefix .. jtype)
  if held[1] then requeue(held[1]) end
end

-- Every index that follows a job's status: by status, ended-at (retention), running (limits), waiting.
local function moved(id, jtype, old, new)
  if old ~= '' then redis.call('ZREM', H.status_prefix .. old, id) end
  redis.call('ZADD', H.status_prefix .. new, 0, id)
  if member(new, H.ended) then
    redis.call('INCR', H.ended_keys[new])
    redis.call('EXPIRE', H.ended_keys[new], H.ended_ttl)
    redis.call('ZADD', H.ended_at_prefix .. new, H.now_ms, id)
  end
  if member(old, H.ended) then redis.call('ZREM', H.ended_at_prefix .. old, id) end
  if new == H.active then redis.call('SADD', H.running_prefix .. jtype, id) end
  if old == H.active then
    redis.call('SREM', H.running_prefix .. jtype, id)
    redis.call('DEL', H.alive_prefix .. id)  -- its worker's sign that it runs
    release(jtype)
  end
  if old == H.pending then
    redis.call('ZREM', H.scheduled_key, id)
    redis.call('ZREM', H.held_prefix .. jtype, id)
  end
end

-- Set H.fields and H.logs on the job, keep the indexes, publish the job-update with the full snapshot.
local function change(old_status)
  local args = {}
  for name, value in pairs(H.fields) do args[#args + 1] = name; args[#args + 1] = value end
  if #args > 0 then redis.call('HSET', KEYS[1], unpack(args)) end
  local new_status = unquote(redis.call('HGET', KEYS[1], 'status'))
  if H.mode == 'create' then redis.call('ZADD', KEYS[3], 0, H.id) end
  if new_status ~= old_status then
    moved(H.id, unquote(redis.call('HGET', KEYS[1], 'type')), old_status, new_status)
  end
  if H.schedule_at then redis.call('ZADD', H.scheduled_key, H.schedule_at, H.id) end

  local log_text = nil
  if #H.logs > 0 then
    redis.call('RPUSH', KEYS[2], unpack(H.logs))
    redis.call('LTRIM', KEYS[2], -H.max_logs, -1)
    log_text = table.concat(H.logs, '\n')
  end

  local values = redis.call('HMGET', KEYS[1], unpack(H.snapshot))
  local parts = {}
  for i, name in ipairs(H.snapshot) do parts[i] = '"' .. name .. '":' .. (values[i] or 'null') end
  local snapshot = '{' .. table.concat(parts, ',') .. '}'

  local data = '{"type":"' .. H.event .. '","job":' .. snapshot
  if log_text then data = data .. ',"log":' .. cjson.encode(log_text) end
  if new_status ~= old_status then data = data .. ',"counts":' .. counts() end
  data = data .. ',"timestamp":"' .. H.ts .. '"}'
  return {'ok', emit(H.event, data), snapshot}
end
