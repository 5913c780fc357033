-- Take the first job of the first non-empty queue, in priority order, into that queue's intermediate list
-- (as RQ's LMOVE does, so a worker that dies meanwhile loses nothing); re-arm the wake list while jobs remain.
-- KEYS: queue 1, its intermediate list, queue 2, its intermediate list, ..., then the wake list
local wake = KEYS[#KEYS]
for i = 1, #KEYS - 1, 2 do
  local id = redis.call('LMOVE', KEYS[i], KEYS[i + 1], 'LEFT', 'RIGHT')
  if id then
    for j = 1, #KEYS - 1, 2 do
      if redis.call('LLEN', KEYS[j]) > 0 then
        redis.call('RPUSH', wake, '1')
        redis.call('LTRIM', wake, -1, -1)
        break
      end
    end
    return {KEYS[i], id}
  end
end
return false
