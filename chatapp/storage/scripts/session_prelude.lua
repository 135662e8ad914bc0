-- Shared by every session script. KEYS = {session hash, messages list}; ARGV[1] is the
-- owner ('' for operators): a session owned by someone else is answered like a missing one.
local function owned(owner)
  if redis.call('EXISTS', KEYS[1]) == 0 then return false end
  return owner == '' or redis.call('HGET', KEYS[1], 'user_id') == owner
end
-- Every write is activity: stamp it and slide the expiry of both keys together.
local function touch(now_ms, now_iso, expires_ms)
  redis.call('HSET', KEYS[1], 'last_activity', now_iso, 'last_ms', now_ms)
  if redis.call('HGET', KEYS[1], 'archived') == '1' then
    redis.call('HDEL', KEYS[1], 'expires_ms')
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', KEYS[2])
  else
    redis.call('HSET', KEYS[1], 'expires_ms', expires_ms)
    redis.call('PEXPIREAT', KEYS[1], expires_ms)
    redis.call('PEXPIREAT', KEYS[2], expires_ms)
  end
end
