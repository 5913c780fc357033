-- Shared by the schedule scripts (after common.lua): a schedule's snapshot and its events.
-- A schedule's hash (keys.SCHEDULE_PREFIX .. id): `def`, the JSON object of its definition (id ... overlap, in
-- wire order); `version`, counted up by every change and every tick claimed; `next_ms`, its next tick in ms ('' while
-- paused); and the JSON values of H.schedule_state, which the snapshot appends to `def` in that order.
-- H.sid is the schedule's id; its event's "job" is H.schedule_events .. id (no job has such an id).

local function schedule_key(id) return H.schedule_prefix .. id end

local function schedule_snapshot(id)
  local key = schedule_key(id)
  local def = redis.call('HGET', key, 'def')
  local values = redis.call('HMGET', key, unpack(H.schedule_state))
  local parts = {string.sub(def, 1, -2)}
  for i, name in ipairs(H.schedule_state) do parts[#parts + 1] = ',"' .. name .. '":' .. (values[i] or 'null') end
  return table.concat(parts) .. '}'
end

-- Publish the schedule-update of `id`; `skipped`: why its tick made no job (nil: it did, or it was not a tick).
local function schedule_event(id, skipped)
  local snapshot = schedule_snapshot(id)
  local data = '{"type":"' .. H.schedule_update .. '","schedule":' .. snapshot .. ',"skipped":'
    .. (skipped and cjson.encode(skipped) or 'null') .. ',"timestamp":"' .. H.ts .. '"}'
  emit(H.schedule_events .. id, H.schedule_update, data)
  return snapshot
end

-- Its next tick in the due set, or out of it ('': paused).
local function schedule_due(id, next_ms)
  if next_ms == '' then
    redis.call('ZREM', H.schedule_due_key, id)
  else
    redis.call('ZADD', H.schedule_due_key, next_ms, id)
  end
end
