-- A consistent read of one task: its hash, and optionally the events after an id.
-- KEYS: 1 task hash, 2 event stream, 3 text so far; 4 (optional) a key whose existence
--       refuses the read (a revoked login's mark: a stream opens in this one round trip)
-- ARGV: 1 id to read after ("" for the snapshot only; "0" or "0-0": from the task's
--       creation on), 2 "text" to include the text so
--       far, "resync" to include it only when a snapshot is due (no id, or events gone)
if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then return {'refused'} end
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {h} end
local text = false
if ARGV[2] == 'text' or (ARGV[2] == 'resync' and ARGV[1] == '') then
  text = redis.call('GET', KEYS[3])
end
if ARGV[1] == '' then return {h, text} end
local after = ARGV[1]
if after == '0' or after == '0-0' then
  -- from the start: every event after the task's creation (its first event, version 1),
  -- unless the capped stream no longer holds that one
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  if first and cjson.decode(first[2][4]).version == 1 then after = first[1] else after = '' end
end
-- an id the stream no longer holds was trimmed (or never existed): events after it may be gone
if after == '' or #redis.call('XRANGE', KEYS[2], after, after) == 0 then
  if ARGV[2] == 'resync' then text = redis.call('GET', KEYS[3]) end
  return {h, text, 'gone'}
end
return {h, text, 'held', redis.call('XRANGE', KEYS[2], '(' .. after, '+')}
