--! session_prelude
-- ARGV: owner, now_ms, now_iso, expires_ms, limit, message JSON...
-- Appends, then answers like read.lua with the newest `limit` messages (the new ones
-- included), so a reply's context costs no extra round trip.
if not owned(ARGV[1]) then return false end
local total = redis.call('RPUSH', KEYS[2], unpack(ARGV, 6))
redis.call('HINCRBY', KEYS[1], 'message_count', #ARGV - 5)
touch(ARGV[2], ARGV[3], ARGV[4])
local start = math.max(total - tonumber(ARGV[5]), 0)
return {redis.call('HGETALL', KEYS[1]), start, redis.call('LRANGE', KEYS[2], start, -1)}
