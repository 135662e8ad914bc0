--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, owner, limit (0 = none, negative = all),
-- before (a message index, '' = from the newest). Answers read_page's {fields, first
-- index, messages}.
local sid = ARGV[2]
if not owned(sid, ARGV[3]) then return false end
return read_page(sid, tonumber(ARGV[4]), ARGV[5])
