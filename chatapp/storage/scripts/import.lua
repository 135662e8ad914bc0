--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, step, then per step:
--   'begin': field/value pairs        (starts over: a half-imported session is dropped)
--   'more':  message JSON...
--   'end':   now_ms, expires_ms ('' = kept for ever)
-- Answers 0 when the session is already fully imported (so the whole import is skipped).
local sid, step = ARGV[2], ARGV[3]
local key = session_key(sid)
if step == 'begin' then
  if redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'importing') == 0 then return 0 end
  if redis.call('EXISTS', key) == 1 then
    unaccount(sid, redis.call('HGET', key, 'user_id'))
    search.forget(sid, redis.call('HGET', key, 'user_id'))
  end
  redis.call('DEL', key, messages_key(sid))
  redis.call('HSET', key, 'importing', '1', unpack(ARGV, 4))
elseif step == 'more' then
  local stored = redis.call('RPUSH', messages_key(sid), unpack(ARGV, 4))
  search.add(sid, redis.call('HGET', key, 'user_id'), stored - (#ARGV - 3), ARGV, 4)
  local size = 0
  for i = 4, #ARGV do size = size + #ARGV[i] end
  account(sid, redis.call('HGET', key, 'user_id'), size)
else
  redis.call('HDEL', key, 'importing')
  redis.call('HSET', key, 'message_count', redis.call('LLEN', messages_key(sid)))
  if ARGV[5] ~= '' then
    redis.call('PEXPIREAT', key, ARGV[5])
    redis.call('PEXPIREAT', messages_key(sid), ARGV[5])
  end
  index(sid, summarize(sid))
  prune(ARGV[4], 10)
end
return 1
