-- The one writer of task state: hash + version + XADD to the capped stream + SPUBLISH.
-- Every key it touches, and its channel, are the task's: one hash slot (`keys.py`).
-- KEYS: 1 task hash, 2 event stream, 3 text so far, 4 result
-- ARGV: 1 event type ("create" makes the task), 2 patch (JSON object, null deletes a field),
--       3 fence (attempt that must be current, "" for none), 4 stream maxlen, 5 ttl seconds,
--       6 channel, 7 partial text ("" for none), 8 result JSON ("" for none)
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
redis.call('SPUBLISH', ARGV[6], message)
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= '' and TERMINAL[redis.call('HGET', KEYS[1], 'status')] then
  return {'ok', id, event, json, owner}
end
return {'ok', id, event, json}
