--! session_prelude
-- ARGV: owner, now_ms, now_iso, expires_ms, message JSON...
if not owned(ARGV[1]) then return false end
redis.call('RPUSH', KEYS[2], unpack(ARGV, 5))
redis.call('HINCRBY', KEYS[1], 'message_count', #ARGV - 4)
touch(ARGV[2], ARGV[3], ARGV[4])
return redis.call('HGETALL', KEYS[1])
