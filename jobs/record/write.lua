-- The one writer of task state: hash + version + XADD to the capped stream + PUBLISH.
-- KEYS: 1 task hash, 2 event stream, 3 text so far, 4 result;
--       for "create" of an owned task also 5 the owner's tasks in flight, 6 the owner's tasks
-- ARGV: 1 event type ("create" makes the task), 2 patch (JSON object, null deletes a field),
--       3 fence (attempt that must be current, "" for none), 4 stream maxlen, 5 ttl seconds,
--       6 channel, 7 partial text ("" for none), 8 result JSON ("" for none),
--       9 the most tasks in flight the owner may have, for "create" ("" for no limit),
--       10 the owner's channel, for "create"
-- Reply: {'ok', id, type, data, owner when the write ended an owned task} or {refusal, …}
local TERMINAL = {completed = true, failed = true, cancelled = true}
-- the snapshot's fields, and which are numbers: filled in from `TaskSnapshot` (tasks.py)
local PUBLIC = {PUBLIC_FIELDS}
local NUMBERS = {NUMBER_FIELDS}

local event = ARGV[1]
local patch = cjson.decode(ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if event == 'create' then
  if status then return {'exists'} end
  -- checked and counted in this one step, so that concurrent submits cannot overshoot
  if KEYS[5] and ARGV[9] ~= '' and redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[9]) then
    return {'limit'}
  end
  event = 'status'
else
  if not status then return {'missing'} end
  if TERMINAL[status] then return {'final', status} end
  if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[3] then
    return {'stale'}
  end
  -- a new attempt starts afresh: its text is written again from the start
  if patch.attempt ~= nil and tostring(patch.attempt) ~= redis.call('HGET', KEYS[1], 'attempt') then
    redis.call('DEL', KEYS[3])
    redis.call('HDEL', KEYS[1], 'textLength')
  end
  -- progress never decreases within one attempt; a new attempt may start again from 0
  if patch.progress ~= nil and patch.attempt == nil then
    local current = tonumber(redis.call('HGET', KEYS[1], 'progress')) or 0
    if patch.progress < current then patch.progress = current end
  end
end

for k, v in pairs(patch) do
  if v == cjson.null then redis.call('HDEL', KEYS[1], k) else redis.call('HSET', KEYS[1], k, v) end
end

local offset = nil
if ARGV[7] ~= '' then
  offset = redis.call('STRLEN', KEYS[3])
  local length = redis.call('APPEND', KEYS[3], ARGV[7])
  redis.call('HSET', KEYS[1], 'textLength', length)
end
if ARGV[8] ~= '' then redis.call('SET', KEYS[4], ARGV[8]) end
redis.call('HINCRBY', KEYS[1], 'version', 1)

local data = {}
for _, k in ipairs(PUBLIC) do
  local v = redis.call('HGET', KEYS[1], k)
  if v and NUMBERS[k] then v = tonumber(v) end
  data[k] = v or cjson.null
end
local json = cjson.encode(data)
redis.call('HSET', KEYS[1], 'snapshot', json)
if offset ~= nil then
  data.text = ARGV[7]
  data.offset = offset
  json = cjson.encode(data)
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'event', event, 'data', json)
redis.call('HSET', KEYS[1], 'lastEventId', id)
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
local message = id .. '\n' .. event .. '\n' .. json
redis.call('PUBLISH', ARGV[6], message)
-- a new task is news on its owner's channel too (`GET /api/v1/events` follows them all),
-- is listed among the owner's tasks, and counts among those in flight until it ends (the
-- caller takes it out of that set: its name is the owner's, which the caller may not know)
if KEYS[5] then
  local task_id = redis.call('HGET', KEYS[1], 'taskId')
  redis.call('PUBLISH', ARGV[10], message)
  redis.call('SADD', KEYS[5], task_id)
  redis.call('ZADD', KEYS[6], tonumber(string.match(id, '^%d+')), task_id)
  redis.call('EXPIRE', KEYS[6], ARGV[5])
  return {'ok', id, event, json}
end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= '' and TERMINAL[redis.call('HGET', KEYS[1], 'status')] then
  return {'ok', id, event, json, owner}
end
return {'ok', id, event, json}
