--! share_prelude
-- KEYS = {the link's id key}. ARGV: prefix, share id, owner ('' = an operator).
-- Answers 1 when the link is revoked, 0 when there is none (or it is not the owner's).
local share_id, owner = ARGV[2], ARGV[3]
local token = redis.call('GET', share_id_key(share_id))
if not token then return 0 end
local sid, uid = unpack(redis.call('HMGET', share_key(token), 'sid', 'uid'))
if not sid then
  redis.call('DEL', share_id_key(share_id))
  return 0
end
if owner ~= '' and uid ~= owner then return 0 end
drop_share(share_id, token, sid, uid)
return 1
