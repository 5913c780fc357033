-- Change one job's hash and publish its job-update event with the full snapshot, atomically.
-- KEYS: job hash, logs list, index zset, replay stream
-- H: id, channel, mode ("create" | "update"), guard (statuses allowed before, [] = any),
--    worker (JSON of the worker that must hold the job, absent = any), ts, fields (name -> JSON value),
--    logs (lines), max_logs, replay_max, status_prefix, ended (statuses that end a job),
--    ended_key (this minute's ended counter), ended_ttl, event (the event name), snapshot (field names)
local exists = redis.call('EXISTS', KEYS[1]) == 1
if H.mode == 'create' and exists then return {'conflict', ''} end
if H.mode ~= 'create' and not exists then return {'missing', ''} end
local old_status = unquote(redis.call('HGET', KEYS[1], 'status'))
if #H.guard > 0 and not member(old_status, H.guard) then return {'conflict', old_status} end
if H.worker and redis.call('HGET', KEYS[1], 'worker') ~= H.worker then return {'conflict', old_status} end

local args = {}
for name, value in pairs(H.fields) do args[#args + 1] = name; args[#args + 1] = value end
if #args > 0 then redis.call('HSET', KEYS[1], unpack(args)) end

local new_status = unquote(redis.call('HGET', KEYS[1], 'status'))
if H.mode == 'create' then redis.call('ZADD', KEYS[3], 0, H.id) end
if new_status ~= old_status then
  if old_status ~= '' then redis.call('ZREM', H.status_prefix .. old_status, H.id) end
  redis.call('ZADD', H.status_prefix .. new_status, 0, H.id)
  if member(new_status, H.ended) then
    redis.call('INCR', H.ended_key)
    redis.call('EXPIRE', H.ended_key, H.ended_ttl)
  end
end

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
data = data .. ',"timestamp":"' .. H.ts .. '"}'
return {'ok', emit(H.event, data), snapshot}
