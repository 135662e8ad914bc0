--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- token, quotas ('' for operators), user id, then the session's field/value pairs.
-- Answers 1, or 0 if the id is taken; a QUOTA error when the user has too many live sessions.
local sid, uid = ARGV[2], ARGV[9]
if redis.call('EXISTS', session_key(sid)) == 1 then
  return already_applied(sid, ARGV[7]) and 1 or 0
end
local refused = over(quotas(ARGV[8], uid), 'live_sessions', live_count(uid, ARGV[3]) + 1)
if refused then return refused end
redis.call('HSET', session_key(sid), 'write_token', ARGV[7], unpack(ARGV, 10))
redis.call('PEXPIREAT', session_key(sid), ARGV[5])
index(sid, summarize(sid))
prune(ARGV[3], 10)
return 1
