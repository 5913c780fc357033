-- Give back jobs that a worker took into an intermediate list (dequeue.lua) and never began, because it died:
-- each goes back to the head of its queue if it is still in the list (of two pools at once, one moves it),
-- and one idle worker is woken. Returns the ids it moved.
-- KEYS: the intermediate list, its queue, the wake list. ARGV: the job ids.
local moved = {}
for _, id in ipairs(ARGV) do
  if redis.call('LREM', KEYS[1], 1, id) == 1 then
    redis.call('LPUSH', KEYS[2], id)
    table.insert(moved, id)
  end
end
if #moved > 0 then
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('LTRIM', KEYS[3], -1, -1)
end
return moved
