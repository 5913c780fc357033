-- Delete one job (hash, logs, index entries) unless its status is kept, and publish its job-removed event.
-- KEYS: job hash, logs list, index zset, replay stream
-- H: id, channel, keep (statuses that may not be deleted), ts, replay_max, status_prefix, event
local raw = redis.call('HGET', KEYS[1], 'status')
if not raw then return {'missing', ''} end
local status = unquote(raw)
if member(status, H.keep) then return {'conflict', status} end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], H.id)
redis.call('ZREM', H.status_prefix .. status, H.id)
local data = '{"type":"' .. H.event .. '","id":' .. cjson.encode(H.id) .. ',"timestamp":"' .. H.ts .. '"}'
return {'ok', emit(H.event, data), ''}
