--! share_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, owner ('' = an operator), now_ms, token, share id,
-- mode ('snapshot' or 'live'), created_at, expires_ms ('' = never), expires_at, cap (the most
-- links the session's user may have working at once; 0 = no cap).
-- Answers 1; false when the session is not found (or not the owner's); a QUOTA error at the cap.
local sid, owner, now = ARGV[2], ARGV[3], ARGV[4]
local token, share_id, mode, expires_ms, cap = ARGV[5], ARGV[6], ARGV[7], ARGV[9], tonumber(ARGV[11])
if not owned(sid, owner) then return false end
local key = session_key(sid)
local uid = redis.call('HGET', key, 'user_id')
local mine = user_shares_key(uid)
if cap > 0 and #active_shares(mine, now) >= cap then return redis.error_reply('QUOTA shares ' .. cap) end
if redis.call('EXISTS', share_key(token)) == 1 then return 0 end
local fields = {'token', token, 'share_id', share_id, 'sid', sid, 'uid', uid, 'mode', mode, 'created_ms', now,
                'created_at', ARGV[8], 'expires_ms', expires_ms, 'expires_at', ARGV[10], 'views', 0}
if mode == 'snapshot' then
  -- What the page shows is frozen now: the session's name, persona, dates and messages.
  local names = {'display_name', 'title', 'persona', 'created_at', 'last_activity'}
  local values = redis.call('HMGET', key, unpack(names))
  for i, name in ipairs(names) do
    if values[i] then
      fields[#fields + 1] = 'session_' .. name
      fields[#fields + 1] = values[i]
    end
  end
  local total = redis.call('LLEN', messages_key(sid))
  for start = 0, total - 1, 1000 do  -- in steps: unpack has a limit on how many it takes
    redis.call('RPUSH', share_messages_key(token), unpack(redis.call('LRANGE', messages_key(sid), start, start + 999)))
  end
end
redis.call('HSET', share_key(token), unpack(fields))
redis.call('SET', share_id_key(share_id), token)
local score = expires_ms
if expires_ms == '' then score = '+inf' end
redis.call('ZADD', session_shares_key(sid), score, share_id)
redis.call('ZADD', mine, score, share_id)
if expires_ms ~= '' then
  for _, k in ipairs({share_key(token), share_messages_key(token), share_id_key(share_id)}) do
    redis.call('PEXPIREAT', k, expires_ms)
  end
end
expire_with_links(session_shares_key(sid))
expire_with_links(mine)
return 1
