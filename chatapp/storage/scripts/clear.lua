--! shard_prelude
-- KEYS = {session hash, or the user's live index}. ARGV: prefix, sid ('' = the latest
-- session of the user in ARGV[8]), now_ms, now_iso, expires_ms, expires_iso, owner, user id.
local sid = ARGV[2]
if sid == '' then sid = latest_session(ARGV[8], ARGV[3]) end
if not sid or not owned(sid, ARGV[7]) then return false end
redis.call('HSET', session_key(sid), 'message_count', 0)
redis.call('DEL', messages_key(sid))
search.clear(sid, redis.call('HGET', session_key(sid), 'user_id'))
unaccount(sid, redis.call('HGET', session_key(sid), 'user_id'))
touch(sid)
index(sid, summarize(sid))
prune(ARGV[3], 10)
announce(sid, 'session', cjson.encode({changes = {'cleared'}}), redis.call('HGET', SUMMARIES, sid))
return redis.call('HGETALL', session_key(sid))
