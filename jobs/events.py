"""Events: the channel names, the event shapes, the replay stream and the SSE framing.

Every change to a job runs one Lua script that updates the job's hash, appends the event to the
capped replay stream (`XADD ... MAXLEN ~`) and PUBLISHes it, atomically; the stream entry id is
the event id. A published message is `<event id>\\n<event name>\\n<json data>` so that a
subscriber frames it without parsing the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

PATTERN = "job:*:progress"
EVENTS_KEY = "jobstream:events"
JOB_UPDATE = "job-update"
JOB_REMOVED = "job-removed"
RESET = "reset"

RETRY_FRAME = b"retry: 3000\n\n"
PING_FRAME = b": ping\n\n"

# The ApiJob fields every event carries, in wire order; each is stored JSON-encoded in the job hash.
SNAPSHOT_FIELDS = (
    "id",
    "name",
    "type",
    "params",
    "status",
    "progress",
    "action",
    "cancel_requested",
    "created_at",
    "started_at",
    "ended_at",
    "error",
    "result",
    "attempts",
    "worker",
)


def channel(job_id: str) -> str:
    """The pub/sub channel of one job's events."""
    return f"job:{job_id}:progress"


def job_id_of(channel_name: bytes | str) -> str:
    """The job id in a `job:<id>:progress` channel name."""
    name = channel_name.decode() if isinstance(channel_name, bytes) else channel_name
    return name[4:-9]


def id_key(event_id: str) -> tuple[int, int]:
    """A Redis stream id as a comparable pair; raises ValueError for anything else."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def frame(event: str, data: str, event_id: str | None = None) -> bytes:
    """One SSE message; multi-line data becomes several `data:` lines."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"{head}event: {event}\n{body}\n".encode()


@dataclass(frozen=True, slots=True)
class Event:
    """A published job event as a stream sees it; `key` orders it against a replay."""

    id: str
    key: tuple[int, int]
    job_id: str
    frame: bytes

    @classmethod
    def from_message(cls, channel_name: bytes, message: bytes) -> Event:
        """Parse a pub/sub message published by the scripts below."""
        event_id, name, data = message.decode().split("\n", 2)
        return cls(event_id, id_key(event_id), job_id_of(channel_name), frame(name, data, event_id))

    @classmethod
    def from_entry(cls, entry_id: bytes, fields: dict[bytes, bytes]) -> Event:
        """Parse one entry of the replay stream."""
        event_id = entry_id.decode()
        body = frame(fields[b"event"].decode(), fields[b"data"].decode(), event_id)
        return cls(event_id, id_key(event_id), fields[b"job"].decode(), body)


_SNAPSHOT_LUA = """
local names = {{{}}}
local values = redis.call('HMGET', KEYS[1], unpack(names))
local parts = {{}}
for i, name in ipairs(names) do parts[i] = '"' .. name .. '":' .. (values[i] or 'null') end
local snapshot = '{{' .. table.concat(parts, ',') .. '}}'
""".format(", ".join(f"'{name}'" for name in SNAPSHOT_FIELDS))

_EMIT_LUA = """
local function emit(job_id, event, data)
  local xid = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'job', job_id, 'event', event, 'data', data)
  redis.call('PUBLISH', 'job:' .. job_id .. ':progress', xid .. '\\n' .. event .. '\\n' .. data)
  return xid
end
"""

# KEYS: job hash, logs list, index zset, replay stream
# ARGV: id, mode (create|update), allowed statuses ("" = any), required worker (JSON, "" = any),
#       timestamp, max log lines, replay length, status index prefix, (unused), log line count,
#       log lines..., then field/JSON-value pairs
APPLY_LUA = (
    _EMIT_LUA
    + """
local id, mode, guard, guard_worker, ts = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local prefix, nlogs = ARGV[8], tonumber(ARGV[10])
local exists = redis.call('EXISTS', KEYS[1]) == 1
if mode == 'create' and exists then return {'conflict', ''} end
if mode ~= 'create' and not exists then return {'missing', ''} end
local old = redis.call('HGET', KEYS[1], 'status')
local old_status = old and string.sub(old, 2, -2) or ''
if guard ~= '' then
  local allowed = false
  for s in string.gmatch(guard, '%S+') do if s == old_status then allowed = true end end
  if not allowed then return {'conflict', old_status} end
end
if guard_worker ~= '' and redis.call('HGET', KEYS[1], 'worker') ~= guard_worker then
  return {'conflict', old_status}
end
local fields = {}
for i = 11 + nlogs, #ARGV, 2 do fields[#fields + 1] = ARGV[i]; fields[#fields + 1] = ARGV[i + 1] end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
local new_status = string.sub(redis.call('HGET', KEYS[1], 'status'), 2, -2)
if mode == 'create' then redis.call('ZADD', KEYS[3], 0, id) end
if new_status ~= old_status then
  if old_status ~= '' then redis.call('ZREM', prefix .. old_status, id) end
  redis.call('ZADD', prefix .. new_status, 0, id)
  if new_status == 'completed' or new_status == 'failed' or new_status == 'canceled' then
    local minute = 'jobstream:ended:' .. string.sub(ts, 1, 16)
    redis.call('INCR', minute)
    redis.call('EXPIRE', minute, 7200)
  end
end
local log_text = nil
if nlogs > 0 then
  local lines = {}
  for i = 11, 10 + nlogs do lines[#lines + 1] = ARGV[i] end
  redis.call('RPUSH', KEYS[2], unpack(lines))
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[6]), -1)
  log_text = table.concat(lines, '\\n')
end
"""
    + _SNAPSHOT_LUA
    + """
local data = '{"type":"job-update","job":' .. snapshot
if log_text then data = data .. ',"log":' .. cjson.encode(log_text) end
data = data .. ',"timestamp":"' .. ts .. '"}'
return {'ok', emit(id, 'job-update', data), snapshot}
"""
)

# KEYS and ARGV as for APPLY_LUA; ARGV[3] lists the statuses that may NOT be deleted.
DELETE_LUA = (
    _EMIT_LUA
    + """
local id, ts, prefix = ARGV[1], ARGV[5], ARGV[8]
local raw = redis.call('HGET', KEYS[1], 'status')
if not raw then return {'missing', ''} end
local status = string.sub(raw, 2, -2)
for s in string.gmatch(ARGV[3], '%S+') do if s == status then return {'conflict', status} end end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', prefix .. status, id)
local data = '{"type":"job-removed","id":' .. cjson.encode(id) .. ',"timestamp":"' .. ts .. '"}'
return {'ok', emit(id, 'job-removed', data), ''}
"""
)
