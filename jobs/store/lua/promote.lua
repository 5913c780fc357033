-- Hand every due job of the scheduled set (a delay, a retry's backoff, a rate limit's wait) to the
-- workers: atomic, so however many processes run this, each job is handed over once.
-- H (beside common.lua's): now_ms, batch
local due = redis.call('ZRANGEBYSCORE', H.scheduled_key, '-inf', H.now_ms, 'LIMIT', 0, H.batch)
for _, id in ipairs(due) do
  redis.call('ZREM', H.scheduled_key, id)
  if unquote(redis.call('HGET', job_key(id), 'status')) == H.pending then requeue(id) end
end
return #due
