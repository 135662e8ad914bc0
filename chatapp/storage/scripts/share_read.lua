--! share_prelude
-- KEYS = {the link's hash}. ARGV: prefix, token, limit (negative = all), before (a message
-- index, '' = from the newest), count ('1': this read is a view, counted).
-- Answers {the link's fields, the live session's fields ({} for a snapshot), first index,
-- message total, messages}; false when the link does not work (expired, revoked, unknown, or
-- live and its session gone).
local token, limit, before = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local share = share_key(token)
local sid, uid, mode, share_id = unpack(redis.call('HMGET', share, 'sid', 'uid', 'mode', 'share_id'))
if not sid then return false end
local list, session = share_messages_key(token), {}
if mode == 'live' then
  if redis.call('EXISTS', session_key(sid)) == 0 then
    drop_share(share_id, token, sid, uid)
    return false
  end
  list = messages_key(sid)
  local names = {'display_name', 'title', 'persona', 'created_at', 'last_activity'}
  local values = redis.call('HMGET', session_key(sid), unpack(names))
  for i, name in ipairs(names) do
    if values[i] then
      session[#session + 1] = 'session_' .. name
      session[#session + 1] = values[i]
    end
  end
end
if ARGV[5] == '1' then redis.call('HINCRBY', share, 'views', 1) end
local total = redis.call('LLEN', list)
local stop = total - 1
if before ~= '' then stop = math.min(tonumber(before), total) - 1 end
local start = 0
if limit >= 0 then start = math.max(stop - limit + 1, 0) end
local messages = {}
if stop >= start and limit ~= 0 then messages = redis.call('LRANGE', list, start, stop) end
return {redis.call('HGETALL', share), session, start, total, messages}
