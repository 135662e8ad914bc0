--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, limit, quotas ('' for operators), message JSON...
-- Appends the messages (each a `message` event for the session's listeners), then answers
-- like read.lua with the newest `limit` messages (the new ones included; 0 for none).
local sid, owner, token, limit = ARGV[2], ARGV[7], ARGV[8], tonumber(ARGV[9])
if not owned(sid, owner) then return false end
local refused = store_messages(sid, 11, ARGV[10], token, true)
if refused then return refused end
return read_tail(sid, limit)
