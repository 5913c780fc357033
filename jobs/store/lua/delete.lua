-- Delete one job (hash, logs, every index, RQ's copy) unless its status is kept; publish job-removed.
-- H (beside common.lua's): keep (statuses that may not be deleted), rq_registries (RQ's sets to leave)
local raw = redis.call('HGET', KEYS[1], 'status')
if not raw then return {'missing', ''} end
local status = unquote(raw)
if member(status, H.keep) then return {'conflict', status} end
local jtype = unquote(redis.call('HGET', KEYS[1], 'type'))
if status == H.pending then  -- out of its queue too (a scan of that queue: deleting a waiting job is rare)
  local priority = unquote(redis.call('HGET', KEYS[1], 'priority'))
  redis.call('LREM', H.queue_keys[priority] or H.queue_keys.normal, 0, H.id)
end
redis.call('DEL', KEYS[1], KEYS[2], H.rq_job_prefix .. H.id, H.rq_results_prefix .. H.id)
redis.call('ZREM', KEYS[3], H.id)
redis.call('ZREM', H.status_prefix .. status, H.id)
redis.call('ZREM', H.ended_at_prefix .. status, H.id)
redis.call('ZREM', H.scheduled_key, H.id)
redis.call('ZREM', H.held_prefix .. jtype, H.id)
for _, registry in ipairs(H.rq_registries) do redis.call('ZREM', registry, H.id) end
local data = '{"type":"' .. H.event .. '","id":' .. cjson.encode(H.id) .. ',"counts":' .. counts()
  .. ',"timestamp":"' .. H.ts .. '"}'
return {'ok', emit(H.event, data), ''}
