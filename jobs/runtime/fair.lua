-- Fair dispatch between users (jobs/runtime/fair.py). KEYS: the ARQ queue, the parked
-- jobs' queue, the ring of owners (owner → their next tag), the tag last dispatched.
-- ARGV[1]: the command; ARGV[2]: the prefix of each owner's list and kept tag.
local queue, parked, ring, served = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local command, prefix = ARGV[1], ARGV[2]

if command == 'park' then
  -- ARGV: owner, task id, how long a drained owner's tag is kept (s)
  local owner, id = ARGV[3], ARGV[4]
  redis.call('RPUSH', prefix .. 'owner:' .. owner, id)
  if not redis.call('ZSCORE', ring, owner) then
    -- behind no one who was waiting, ahead of what the busiest have queued since
    local kept = tonumber(redis.call('GET', prefix .. 'tag:' .. owner) or '0')
    local now = tonumber(redis.call('GET', served) or '0')
    redis.call('ZADD', ring, math.max(kept, now), owner)
  end
  return 1
end

if command == 'dispatch' then
  -- ARGV: room (how many to move), now (ms), how long a drained owner's tag is kept (s).
  -- Returns the ids moved.
  local room, now, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local moved = {}
  while #moved < room do
    local head = redis.call('ZRANGE', ring, 0, 0, 'WITHSCORES')
    if #head == 0 then break end
    local owner, tag = head[1], tonumber(head[2])
    local list = prefix .. 'owner:' .. owner
    local id = redis.call('LPOP', list)
    redis.call('SET', served, tag)
    if redis.call('LLEN', list) == 0 then
      redis.call('ZREM', ring, owner)
      redis.call('SET', prefix .. 'tag:' .. owner, tag + 1, 'EX', keep)
    else
      redis.call('ZADD', ring, tag + 1, owner)
    end
    -- a job cancelled while parked was made due already: its id is skipped
    if id and redis.call('ZREM', parked, id) == 1 then
      -- in the order moved (ARQ runs equal scores in the ids' order)
      redis.call('ZADD', queue, now + #moved / 1000, id)
      moved[#moved + 1] = id
    end
  end
  return moved
end

if command == 'unpark' then
  -- ARGV: task id. Due at once (a cancel: the worker sees the abort and drops the job).
  if redis.call('ZREM', parked, ARGV[3]) == 1 then
    redis.call('ZADD', queue, 1, ARGV[3])
    return 1
  end
  return 0
end

return redis.error_reply('unknown command ' .. command)
