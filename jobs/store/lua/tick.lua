-- A schedule's tick, claimed and turned into its job (or skipped) atomically, so a claimed tick always has its job
-- and no two pools both have it: the tick must still be the schedule's `next_ms` (H.expected_ms; else 'taken') and
-- its version the one read (H.version; else 'stale'). The claim moves `next_ms` to H.next_ms and counts the version
-- up. With H.skip_live, a previous job of the schedule still pending or active skips the tick (a schedule-update
-- with skipped H.skipped); H.skip skips it whatever ran, with that reason. H.expected_ms '' is a run now: no claim,
-- no overlap check, `next_ms` kept.
-- The job (H.job: common.lua's J, mode "create") is created with change(), its RQ copy (H.rq, H.rq_now, ARGV[2]:
-- RQ's data) queued on H.queue; then the schedule's last_run_at (H.last_run_at) and last_job_id, and its event.
-- Returns {'created', event id, job snapshot} | {'skipped'} | {'taken'} | {'stale'} | {'missing'}.
local key = schedule_key(H.sid)
local state = redis.call('HMGET', key, 'version', 'next_ms', 'last_job_id')
if not state[1] then return {'missing'} end
if H.expected_ms ~= '' then
  if state[1] ~= H.version then return {'stale'} end
  if state[2] ~= H.expected_ms then return {'taken'} end
  -- a new version too: an upsert or a pause read before this claim must not write back the tick it took
  redis.call('HSET', key, 'next_ms', H.next_ms, 'next_run_at', H.next_run_at, 'version', tonumber(state[1]) + 1)
  schedule_due(H.sid, H.next_ms)
  if H.skip then  -- a job this pool cannot make (its type unknown here): the tick goes rather than stay due
    schedule_event(H.sid, H.skip)
    return {'skipped'}
  end
  local last = state[3] and cjson.decode(state[3])
  if H.skip_live and type(last) == 'string' then
    local status = redis.call('HGET', job_key(last), 'status')
    if status and (unquote(status) == H.pending or unquote(status) == H.active) then
      schedule_event(H.sid, H.skipped)
      return {'skipped'}
    end
  end
end

local J = H.job
local created = change(J, '', unquote(J.fields.type))
rq_copy(J.id, ARGV[2], H.rq_queued, H.rq)
redis.call('RPUSH', H.queue, J.id)
redis.call('SADD', H.rq_queues_key, H.queue)
arm()
redis.call('HSET', key, 'last_run_at', H.last_run_at, 'last_job_id', '"' .. J.id .. '"')
schedule_event(H.sid, nil)
return {'created', created[2], created[3]}
