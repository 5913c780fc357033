-- Delete one job (hash, logs, every index, RQ's copy) unless its status is kept, or a job that depends on it has
-- not ended (it waits for it, or will read its result); publish job-removed.
-- H (beside common.lua's): id, event, keep (statuses that may not be deleted), rq_registries (RQ's sets to leave)
-- Returns {'ok', event id, ''}, or {why, status}: missing, conflict (a kept status), needed (a dependent lives).
local key = job_key(H.id)
local current = redis.call('HMGET', key, 'status', 'type', 'priority', 'depends_on')
if not current[1] then return {'missing', ''} end
local status = unquote(current[1])
if member(status, H.keep) then return {'conflict', status} end
for _, child in ipairs(redis.call('SMEMBERS', dependents_key(H.id))) do
  local its = redis.call('HGET', job_key(child), 'status')
  if its and not member(unquote(its), H.ended) then return {'needed', status} end
end
for _, parent in ipairs(current[4] and cjson.decode(current[4]) or {}) do
  redis.call('SREM', dependents_key(parent), H.id)
end
local jtype = unquote(current[2])
if status == H.pending then  -- out of its queue too (a scan of that queue: deleting a waiting job is rare)
  redis.call('HINCRBY', H.type_pending_key, jtype, -1)
  redis.call('LREM', H.queue_keys[unquote(current[3])] or H.queue_keys.normal, 0, H.id)
  redis.call('ZREM', H.scheduled_key, H.id)
  redis.call('ZREM', H.held_prefix .. jtype, H.id)
end
if status == H.failed then unfailed(H.id) end
redis.call('DEL', key, logs_key(H.id), dependents_key(H.id), H.rq_job_prefix .. H.id, H.rq_results_prefix .. H.id)
redis.call('ZREM', H.index_key, H.id)
redis.call('ZREM', H.status_prefix .. status, H.id)
redis.call('HINCRBY', H.counts_key, status, -1)
redis.call('ZREM', H.ended_at_prefix .. status, H.id)
for _, registry in ipairs(H.rq_registries) do redis.call('ZREM', registry, H.id) end
local data = '{"type":"' .. H.event .. '","id":' .. cjson.encode(H.id) .. ',"counts":' .. counts()
  .. ',"timestamp":"' .. H.ts .. '"}'
return {'ok', emit(H.id, H.event, data), ''}
