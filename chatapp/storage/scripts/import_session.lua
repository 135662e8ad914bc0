--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso, quotas
-- ('' for operators), user id, archived ('1' kept for ever, '0' an ordinary session with the
-- sliding expiry), number of field/value pairs N, N pairs, then message JSON...
-- One imported conversation, whole or not at all: the session with its own times, every
-- message, the byte count and every index in one step; a QUOTA error (nothing written) when
-- it would take the user over a quota. Answers 1, or 0 if the id is taken.
local sid, spec, uid, archived = ARGV[2], ARGV[7], ARGV[8], ARGV[9]
local key = session_key(sid)
if redis.call('EXISTS', key) == 1 then return 0 end
local n = tonumber(ARGV[10])
local first = 11 + 2 * n
local count = #ARGV - first + 1
local size = 0
for i = first, #ARGV do size = size + #ARGV[i] end
local q = quotas(spec, uid)
local refused
if archived == '1' then
  refused = over(q, 'kept_sessions', redis.call('ZCARD', P .. 'arch:u:' .. uid) + 1)
else
  refused = over(q, 'live_sessions', live_count(uid, ARGV[3]) + 1)
end
refused = refused or over(q, 'messages_per_session', count)
  or over(q, 'bytes', tonumber(redis.call('GET', P .. 'used:u:' .. uid) or '0') + size)
if refused then return refused end
redis.call('HSET', key, 'archived', archived, 'message_count', count, unpack(ARGV, 11, first - 1))
-- RPUSH in batches: unpack() of more than a few thousand values overflows Lua's stack.
for i = first, #ARGV, 1000 do
  redis.call('RPUSH', messages_key(sid), unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
search.add(sid, uid, 0, ARGV, first)
account(sid, uid, size)
if archived ~= '1' then
  redis.call('HSET', key, 'expires_ms', ARGV[5], 'expires_at', ARGV[6])
  redis.call('PEXPIREAT', key, ARGV[5])
  if count > 0 then redis.call('PEXPIREAT', messages_key(sid), ARGV[5]) end
end
index(sid, summarize(sid))
prune(ARGV[3], 10)
return 1
