--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, limit, quotas ('' for operators), announced ('1': each message is a `message`
-- event for the session's listeners; '0' for bulk loads nobody is watching), message JSON...
-- Appends the messages, then answers like read.lua with the newest `limit` messages (the
-- new ones included; 0 for none).
local sid, owner, token, limit = ARGV[2], ARGV[7], ARGV[8], tonumber(ARGV[9])
if not owned(sid, owner) then return false end
local refused = store_messages(sid, 12, ARGV[10], token, ARGV[11] == '1')
if refused then return refused end
return read_tail(sid, limit)
