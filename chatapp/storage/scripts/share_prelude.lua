--! shard_prelude
-- Share links (chatapp/storage/shares.py). A link's keys are in the shard of the session it
-- shares (its token and id name that shard), so one script writes the link with the session's
-- own keys, on one server or a Redis Cluster. Each key of a link expires with it (PEXPIREAT;
-- none for a link that never expires); the two lists of links are pruned as they are read.
local function share_key(token) return P .. 'sh:' .. token end
local function share_messages_key(token) return P .. 'shm:' .. token end
local function share_id_key(share_id) return P .. 'shid:' .. share_id end
local function session_shares_key(sid) return P .. 'shs:' .. sid end
local function user_shares_key(uid) return P .. 'shu:' .. uid end
-- Remove a link: its keys and its entries in the session's and the user's lists.
local function drop_share(share_id, token, sid, uid)
  if token then redis.call('DEL', share_key(token), share_messages_key(token)) end
  redis.call('DEL', share_id_key(share_id))
  if sid then redis.call('ZREM', session_shares_key(sid), share_id) end
  if uid then redis.call('ZREM', user_shares_key(uid), share_id) end
end
-- The link's token while it works, else false: its keys went (expired, revoked), or it is a
-- live link whose session went (expired or deleted), which is dropped on the way.
local function active_token(share_id)
  local token = redis.call('GET', share_id_key(share_id))
  if not token then return false end
  local sid, uid, mode = unpack(redis.call('HMGET', share_key(token), 'sid', 'uid', 'mode'))
  if not sid then
    redis.call('DEL', share_id_key(share_id))
    return false
  end
  if mode == 'live' and redis.call('EXISTS', session_key(sid)) == 0 then
    drop_share(share_id, token, sid, uid)
    return false
  end
  return token
end
-- A list keeps the expiry of its last link, or none while one never expires.
local function expire_with_links(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last == 0 then return end
  if last[2] == 'inf' then redis.call('PERSIST', key) else redis.call('PEXPIREAT', key, last[2]) end
end
-- The links of a list (a session's or a user's) that still work, as {share id, token} pairs,
-- oldest expiry first; entries of links that ended are removed.
local function active_shares(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local alive = {}
  for _, share_id in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local token = active_token(share_id)
    if token then alive[#alive + 1] = {share_id, token} else redis.call('ZREM', key, share_id) end
  end
  return alive
end
-- A session is deleted: its live links end with it (snapshots stay until they expire).
local function end_live_shares(sid)
  for _, share_id in ipairs(redis.call('ZRANGE', session_shares_key(sid), 0, -1)) do
    local token = redis.call('GET', share_id_key(share_id))
    local uid, mode = false, false
    if token then uid, mode = unpack(redis.call('HMGET', share_key(token), 'uid', 'mode')) end
    if mode == 'live' or not mode then drop_share(share_id, token, sid, uid) end
  end
end
