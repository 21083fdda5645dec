-- A consistent read of one task: its hash, and optionally the events after an id.
-- KEYS: 1 task hash, 2 event stream, 3 text so far
-- ARGV: 1 id to read after ("" for the snapshot only), 2 "text" to include the text so far
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {h} end
local text = false
if ARGV[2] == 'text' then text = redis.call('GET', KEYS[3]) end
if ARGV[1] == '' then return {h, text} end
-- the newest id trimmed from the stream: events after an older id may be gone
local trimmed = '0-0'
if redis.call('EXISTS', KEYS[2]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  for i = 1, #info, 2 do
    if info[i] == 'max-deleted-entry-id' then trimmed = info[i + 1] end
  end
end
return {h, text, trimmed, redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+')}
