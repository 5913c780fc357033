-- Rebuild the counters by status (and of pending jobs by type) from the status sets when they are missing (a
-- store from before them). A count of 0 needs no field: the scripts' HINCRBY starts from nothing, and an empty
-- store keeps no key.
if redis.call('EXISTS', H.counts_key) == 1 then return 0 end
for _, status in ipairs(H.statuses) do
  local count = redis.call('ZCARD', H.status_prefix .. status)
  if count > 0 then redis.call('HSET', H.counts_key, status, count) end
end
redis.call('DEL', H.type_pending_key)
for _, id in ipairs(redis.call('ZRANGE', H.status_prefix .. H.pending, 0, -1)) do
  redis.call('HINCRBY', H.type_pending_key, unquote(redis.call('HGET', job_key(id), 'type')), 1)
end
return 1
