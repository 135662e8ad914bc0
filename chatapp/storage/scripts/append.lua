--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, limit, quotas ('' for operators), message JSON...
-- Appends the messages, then answers like read.lua with the newest `limit` messages (the
-- new ones included; 0 for none), so a reply's context costs no extra round trip.
local sid, owner, token, limit = ARGV[2], ARGV[7], ARGV[8], tonumber(ARGV[9])
if not owned(sid, owner) then return false end
if not already_applied(sid, token) then
  local key = session_key(sid)
  local uid = redis.call('HGET', key, 'user_id')
  local q = quotas(ARGV[10], uid)
  local count = #ARGV - 10
  local size = 0
  for i = 11, #ARGV do size = size + #ARGV[i] end
  local refused = over(q, 'messages_per_session', tonumber(redis.call('HGET', key, 'message_count')) + count)
    or over(q, 'bytes', tonumber(redis.call('GET', P .. 'used:u:' .. uid) or '0') + size)
  if refused then return refused end
  redis.call('RPUSH', messages_key(sid), unpack(ARGV, 11))
  redis.call('HINCRBY', key, 'message_count', count)
  redis.call('HSET', key, 'write_token', token)
  account(sid, uid, size)
  touch(sid)
  index(sid, summarize(sid))
  prune(ARGV[3], 10)
end
local total = redis.call('LLEN', messages_key(sid))
local start = math.max(total - limit, 0)
local messages = {}
if limit > 0 then messages = redis.call('LRANGE', messages_key(sid), start, -1) end
return {redis.call('HGETALL', session_key(sid)), start, messages}
