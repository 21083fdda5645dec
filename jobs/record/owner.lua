-- A new task on its owner's side: the owner's keys and channel share the hash slot
-- `{user:<owner>}` (`keys.py`), another slot than the task's, so it takes two calls.
-- KEYS: 1 the owner's tasks in flight, 2 the owner's tasks (scored by creation time, ms)
-- ARGV: 1 "admit" or "list", 2 the task id;
--   admit, before the task is written: 3 the most tasks in flight ("" for no limit).
--     Checked and counted in one step, so that concurrent submits cannot overshoot.
--     Reply: 1, or 0 when the owner has that many already.
--   list, once it is written: 3 its creation time (ms), 4 ttl seconds, 5 the owner's
--     channel, 6 the creation's message: listed, then announced (an all-tasks stream
--     looks for new tasks among those listed when it hears of one).
if ARGV[1] == 'admit' then
  if ARGV[3] ~= '' and redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
  redis.call('SADD', KEYS[1], ARGV[2])
  return 1
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SPUBLISH', ARGV[5], ARGV[6])
return 1
