--! session_prelude
-- ARGV: owner, now_ms, now_iso, expires_ms, archived ('1', '0' or '' to keep),
--       number of fields to set N, N field/value pairs, then fields to delete
if not owned(ARGV[1]) then return false end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'archived', ARGV[5]) end
local n = tonumber(ARGV[6])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 7, 6 + 2 * n)) end
if #ARGV > 6 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 7 + 2 * n)) end
touch(ARGV[2], ARGV[3], ARGV[4])
return redis.call('HGETALL', KEYS[1])
