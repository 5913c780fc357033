-- Shared by every script: append an event to the capped replay stream and publish it.
-- H is the call's header (one JSON object in ARGV[1]); KEYS[4] is the replay stream.
local H = cjson.decode(ARGV[1])

-- The message is "<event id>\n<event name>\n<json data>", so a subscriber frames it without parsing the JSON.
local function emit(event, data)
  local xid = redis.call('XADD', KEYS[4], 'MAXLEN', '~', H.replay_max, '*', 'job', H.id, 'event', event, 'data', data)
  redis.call('PUBLISH', H.channel, xid .. '\n' .. event .. '\n' .. data)
  return xid
end

local function unquote(json_string)
  return json_string and string.sub(json_string, 2, -2) or ''
end

local function member(value, list)
  for _, each in ipairs(list) do if each == value then return true end end
  return false
end
