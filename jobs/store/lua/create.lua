-- Create a batch of new jobs, each with RQ's copy, its indexes and its job-update event, atomically.
-- H holds only what it reads of common.lua's header (scripts.CREATE_NEEDS), `event`, `ts`, and what the batch's
--   jobs share: `shapes` (per distinct type and options: `fields`, the job hash's constant fields as name, JSON
--   value, ...; `rq`, RQ's hash's constant fields likewise; `queue`, its RQ queue's key; `type`, its type's name), `rq_now` (RQ's created_at
--   and enqueued_at, in its format), `stride` (ARGV entries per job).
-- ARGV[2..] holds, per job, `stride` entries: id, shape (1-based), name, params, created_at, scheduled_for (JSON
--   values), the time it may start (ms, '' for now), its snapshot's JSON, and RQ's `data` (bytes: not in JSON).
-- H.links, in a batch with dependencies only (its header is then the whole of common.lua's, and `now_ms`,
--   `ended_keys`): per job that has some (its place in ARGV, from 1, as a string), `on` (the ids it depends on:
--   this batch's or stored ones) and `allow` (allow_failure). Such a job waits (pending, out of every queue) for
--   those that have not ended; one whose stored dependency failed or was canceled is canceled after its creation.
-- Returns how many jobs it created (each published one event); with links, {count, {id, snapshot, ...}} of the
--   linked jobs as the batch left them, or {'missing', id} for a stored dependency that is not, before any write.

local function chunked(command, key, flat, stride)  -- Lua's unpack takes a few thousand values at a time
  local step = 4000 * stride
  for first = 1, #flat, step do
    redis.call(command, key, unpack(flat, first, math.min(first + step - 1, #flat)))
  end
end

local count = (#ARGV - 1) / H.stride
if count < 1 then return 0 end

local waits, doomed = {}, {}  -- per linked job (by place): the ids it waits for; why it may not run
local any_doomed = false
if H.links then
  local fresh = {}
  for n = 1, count do fresh[ARGV[2 + (n - 1) * H.stride]] = true end
  for place, link in pairs(H.links) do
    local n, waiting = tonumber(place), {}
    for _, dep in ipairs(link.on) do
      if fresh[dep] then
        waiting[#waiting + 1] = dep
      else
        local status = redis.call('HGET', job_key(dep), 'status')
        if not status then return {'missing', dep} end
        status = unquote(status)
        if not member(status, H.ended) then
          waiting[#waiting + 1] = dep
        elseif status ~= H.completed and not link.allow and not doomed[n] then
          doomed[n] = 'dependency ' .. dep .. ' ' .. status
          any_doomed = true
        end
      end
    end
    waits[n] = waiting
  end
end
local ids, scored, pending = {}, {}, {}
local linked = {}  -- id, snapshot, ... of the jobs with dependencies
local queued = {}  -- queue key -> its new ids in order
local scheduled = {}  -- ms, id, ms, id, ...
local by_type = {}  -- type -> its new jobs, for the pending count by type

local before = {}
local flat = redis.call('HGETALL', H.counts_key)
for i = 1, #flat, 2 do before[flat[i]] = tonumber(flat[i + 1]) end
local head, tail = {}, {}  -- the counts' JSON around the pending count, which grows by one per job
local at_pending = false
for _, status in ipairs(H.statuses) do
  local part = '"' .. status .. '":'
  if status == H.pending then
    head[#head + 1] = part; at_pending = true
  elseif at_pending then
    tail[#tail + 1] = part .. (before[status] or 0)
  else
    head[#head + 1] = part .. (before[status] or 0) .. ','
  end
end
local counts_head = '{' .. table.concat(head)
local counts_tail = (#tail > 0 and ',' or '') .. table.concat(tail, ',') .. '}'
local pending_before = before[H.pending] or 0

for n = 1, count do
  local at = 1 + (n - 1) * H.stride
  local id, shape = ARGV[at + 1], H.shapes[tonumber(ARGV[at + 2])]
  by_type[shape.type] = (by_type[shape.type] or 0) + 1
  local start, snapshot, data = ARGV[at + 7], ARGV[at + 8], ARGV[at + 9]
  redis.call('HSET', job_key(id), 'id', '"' .. id .. '"', 'name', ARGV[at + 3], 'params', ARGV[at + 4],
    'created_at', ARGV[at + 5], 'scheduled_for', ARGV[at + 6], unpack(shape.fields))
  local waiting = waits[n]
  if waiting then
    local link = H.links[tostring(n)]
    redis.call('HSET', job_key(id), 'depends_on', id_list(link.on), 'waiting_for', id_list(waiting))
    for _, dep in ipairs(link.on) do redis.call('SADD', dependents_key(dep), id) end
    snapshot = snapshot_of(id)
    linked[#linked + 1] = id; linked[#linked + 1] = snapshot
  end
  if waiting and (#waiting > 0 or doomed[n]) then  -- in no queue until its dependencies end
    rq_copy(id, data, H.rq_deferred, shape.rq)
    if start ~= '' then redis.call('HSET', job_key(id), 'start_at', start) end
  elseif start == '' then
    rq_copy(id, data, H.rq_queued, shape.rq)
    local list = queued[shape.queue]
    if not list then list = {}; queued[shape.queue] = list end
    list[#list + 1] = id
  else
    rq_copy(id, data, H.rq_scheduled, shape.rq)
    scheduled[#scheduled + 1] = start; scheduled[#scheduled + 1] = id
  end
  ids[n] = id
  scored[#scored + 1] = 0; scored[#scored + 1] = id
  local counts = counts_head .. (pending_before + n) .. counts_tail
  emit(id, H.event, '{"type":"' .. H.event .. '","job":' .. snapshot .. ',"counts":' .. counts .. ',"timestamp":"'
    .. H.ts .. '"}')
end

chunked('ZADD', H.index_key, scored, 2)
chunked('ZADD', H.status_prefix .. H.pending, scored, 2)
redis.call('HINCRBY', H.counts_key, H.pending, count)
for jtype, created in pairs(by_type) do redis.call('HINCRBY', H.type_pending_key, jtype, created) end
if #scheduled > 0 then chunked('ZADD', H.scheduled_key, scheduled, 2) end
for _, shape in ipairs(H.shapes) do redis.call('SADD', H.rq_queues_key, shape.queue) end
for queue, list in pairs(queued) do chunked('RPUSH', queue, list, 1) end
arm()
if not H.links then return count end
if any_doomed then  -- canceled after their creation, their dependents in the batch after them: read again
  for n = 1, count do
    if doomed[n] then doom(ids[n], H.shapes[tonumber(ARGV[3 + (n - 1) * H.stride])].type, doomed[n]) end
  end
  for at = 1, #linked, 2 do linked[at + 1] = snapshot_of(linked[at]) end
end
return {count, linked}
