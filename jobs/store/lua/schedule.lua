-- Change a schedule and publish its event, atomically: H.mode "set" writes H.fields (name -> value) and H.next_ms
-- if its version is still H.version ('' for a schedule that must not exist yet), then publishes schedule-update;
-- "remove" deletes it (its jobs stay) and publishes schedule-removed.
-- Returns {'ok', snapshot} | {'conflict', version now} | {'missing'}.
local key = schedule_key(H.sid)
local version = redis.call('HGET', key, 'version') or ''
if H.mode == 'remove' then
  if version == '' then return {'missing'} end
  redis.call('DEL', key)
  redis.call('ZREM', H.schedule_due_key, H.sid)
  redis.call('ZREM', H.schedules_key, H.sid)
  emit(H.schedule_events .. H.sid, H.schedule_removed, '{"type":"' .. H.schedule_removed .. '","id":'
    .. cjson.encode(H.sid) .. ',"timestamp":"' .. H.ts .. '"}')
  return {'ok', ''}
end
if version ~= H.version then return {'conflict', version} end
local args = {}
for name, value in pairs(H.fields) do args[#args + 1] = name; args[#args + 1] = value end
redis.call('HSET', key, 'version', (tonumber(version) or 0) + 1, 'next_ms', H.next_ms, unpack(args))
schedule_due(H.sid, H.next_ms)
redis.call('ZADD', H.schedules_key, 0, H.sid)
return {'ok', schedule_event(H.sid, nil)}
