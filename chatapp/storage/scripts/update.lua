--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, archived ('1', '0' or '' to keep), number of fields to set N,
-- N field/value pairs, then fields to delete. Archiving moves the session between
-- indexes in the same step.
local sid, owner = ARGV[2], ARGV[7]
if not owned(sid, owner) then return false end
local key = session_key(sid)
if ARGV[9] ~= '' then redis.call('HSET', key, 'archived', ARGV[9]) end
local n = tonumber(ARGV[10])
if n > 0 then redis.call('HSET', key, unpack(ARGV, 11, 10 + 2 * n)) end
if #ARGV > 10 + 2 * n then redis.call('HDEL', key, unpack(ARGV, 11 + 2 * n)) end
touch(sid)
index(sid, summarize(sid))
prune(ARGV[3], 10)
return redis.call('HGETALL', key)
