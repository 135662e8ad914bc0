--! share_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, owner ('' = an operator), now_ms.
-- Answers the fields of each of the session's working links; false when the session is not found.
local sid = ARGV[2]
if not owned(sid, ARGV[3]) then return false end
local found = {}
for _, pair in ipairs(active_shares(session_shares_key(sid), ARGV[4])) do
  found[#found + 1] = redis.call('HGETALL', share_key(pair[2]))
end
return found
