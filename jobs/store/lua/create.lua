-- Create a batch of new jobs, each with RQ's copy, its indexes and its job-update event, atomically.
-- H holds only what it reads of common.lua's header (scripts.CREATE_NEEDS), `event`, `ts`, and what the batch's
--   jobs share: `shapes` (per distinct type and options: `fields`, the job hash's constant fields as name, JSON
--   value, ...; `rq`, RQ's hash's constant fields likewise; `queue`, its RQ queue's key; `type`, its type's name), `rq_now` (RQ's created_at
--   and enqueued_at, in its format), `stride` (ARGV entries per job).
-- ARGV[2..] holds, per job, `stride` entries: id, shape (1-based), name, params, created_at, scheduled_for (JSON
--   values), the time it may start (ms, '' for now), its snapshot's JSON, and RQ's `data` (bytes: not in JSON).
-- Returns how many jobs it created (each published one event).

local function chunked(command, key, flat, stride)  -- Lua's unpack takes a few thousand values at a time
  local step = 4000 * stride
  for first = 1, #flat, step do
    redis.call(command, key, unpack(flat, first, math.min(first + step - 1, #flat)))
  end
end

local count = (#ARGV - 1) / H.stride
if count < 1 then return 0 end
local ids, scored, pending = {}, {}, {}
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
  local rq_key = H.rq_job_prefix .. id
  if start == '' then
    redis.call('HSET', rq_key, 'data', data, 'created_at', H.rq_now, 'status', H.rq_queued,
      'enqueued_at', H.rq_now, unpack(shape.rq))
    local list = queued[shape.queue]
    if not list then list = {}; queued[shape.queue] = list end
    list[#list + 1] = id
  else
    redis.call('HSET', rq_key, 'data', data, 'created_at', H.rq_now, 'status', H.rq_scheduled,
      unpack(shape.rq))
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
return count
