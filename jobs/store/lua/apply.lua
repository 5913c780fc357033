-- Change one job and publish its job-update event, atomically, if its status and worker allow it.
-- H (beside common.lua's): mode ("create" | "update"), guard (statuses allowed before, [] = any),
--   worker (JSON of the worker that must hold the job, absent = any), fields (name -> JSON value),
--   logs (lines), schedule_at (ms: wait in the scheduled set until then, absent = not)
local exists = redis.call('EXISTS', KEYS[1]) == 1
if H.mode == 'create' and exists then return {'conflict', ''} end
if H.mode ~= 'create' and not exists then return {'missing', ''} end
local old_status = unquote(redis.call('HGET', KEYS[1], 'status'))
if #H.guard > 0 and not member(old_status, H.guard) then return {'conflict', old_status} end
if H.worker and redis.call('HGET', KEYS[1], 'worker') ~= H.worker then return {'conflict', old_status} end
return change(old_status)
