--! shard_prelude
-- KEYS = {the user's live index}. ARGV: prefix, user id, now_ms, limit, before.
-- The user's most recently active session read like read.lua: one index lookup, never a
-- walk over the user's sessions.
local sid = latest_session(ARGV[2], ARGV[3])
if not sid then return false end
return read_page(sid, tonumber(ARGV[4]), ARGV[5])
