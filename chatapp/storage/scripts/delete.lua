--! session_prelude
-- ARGV: owner. Answers the session's user id and persona, so the caller can drop its
-- index entries.
if not owned(ARGV[1]) then return false end
local fields = redis.call('HMGET', KEYS[1], 'user_id', 'persona')
redis.call('DEL', KEYS[1], KEYS[2])
return fields
