--! session_prelude
-- ARGV: owner, now_ms, now_iso, expires_ms
if not owned(ARGV[1]) then return false end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'message_count', 0)
touch(ARGV[2], ARGV[3], ARGV[4])
return redis.call('HGETALL', KEYS[1])
