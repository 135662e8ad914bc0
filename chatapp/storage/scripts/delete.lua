--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, owner. The session, its messages, its
-- summary and its entries in every index go in one step.
local sid = ARGV[2]
if not owned(sid, ARGV[3]) then return false end
local uid, persona = unpack(redis.call('HMGET', session_key(sid), 'user_id', 'persona'))
for _, state in ipairs({'live', 'arch'}) do
  for _, key in ipairs(scopes(state, uid, persona)) do redis.call('ZREM', key, sid) end
end
redis.call('HDEL', SUMMARIES, sid)
unaccount(sid, uid)
redis.call('DEL', session_key(sid), messages_key(sid))
return 1
