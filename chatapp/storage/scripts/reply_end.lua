--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- reply id, outcome ('done' or 'error'), token, event data JSON, then the reply's message
-- JSON (none when there is no text to keep).
-- Stores the reply (no quota: the message it answers was accepted), frees the session for
-- the next one, and tells the listeners how it ended, with the session as it now is.
-- Answers the session's fields, or false when the session is gone.
local sid, reply_id, outcome, token, data = ARGV[2], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
if redis.call('HGET', reply_key(sid), 'id') == reply_id then
  redis.call('DEL', reply_key(sid), reply_text_key(sid))
end
if redis.call('EXISTS', session_key(sid)) == 0 then return false end
if already_applied(sid, token) then return redis.call('HGETALL', session_key(sid)) end
store_messages(sid, 11, '', token, false)
redis.call('HSET', session_key(sid), 'write_token', token)
announce(sid, outcome, data, redis.call('HGET', SUMMARIES, sid))
return redis.call('HGETALL', session_key(sid))
