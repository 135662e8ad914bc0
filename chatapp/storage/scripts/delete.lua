--! share_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, owner. The session, its messages, its
-- summary, its entries in every index and its live share links go in one step.
local sid = ARGV[2]
if not owned(sid, ARGV[3]) then return false end
local uid, persona = unpack(redis.call('HMGET', session_key(sid), 'user_id', 'persona'))
for _, state in ipairs({'live', 'arch'}) do
  for _, key in ipairs(scopes(state, uid, persona)) do redis.call('ZREM', key, sid) end
end
redis.call('HDEL', SUMMARIES, sid)
unaccount(sid, uid)
end_live_shares(sid)
search.forget(sid, uid)
redis.call('DEL', session_key(sid), messages_key(sid), reply_key(sid), reply_text_key(sid))
-- The listeners hear of it, then the stream goes too (a minute is plenty to deliver one event).
announce(sid, 'session', cjson.encode({changes = {'deleted'}, session_id = sid}))
redis.call('PEXPIRE', events_key(sid), 60000)
return 1
