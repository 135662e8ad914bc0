--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, limit, message JSON...
-- Appends the messages, then answers like read.lua with the newest `limit` messages (the
-- new ones included; 0 for none), so a reply's context costs no extra round trip.
local sid, owner, token, limit = ARGV[2], ARGV[7], ARGV[8], tonumber(ARGV[9])
if not owned(sid, owner) then return false end
if not already_applied(sid, token) then
  redis.call('RPUSH', messages_key(sid), unpack(ARGV, 10))
  redis.call('HINCRBY', session_key(sid), 'message_count', #ARGV - 9)
  redis.call('HSET', session_key(sid), 'write_token', token)
  touch(sid)
  index(sid, summarize(sid))
  prune(ARGV[3], 10)
end
local total = redis.call('LLEN', messages_key(sid))
local start = math.max(total - limit, 0)
local messages = {}
if limit > 0 then messages = redis.call('LRANGE', messages_key(sid), start, -1) end
return {redis.call('HGETALL', session_key(sid)), start, messages}
