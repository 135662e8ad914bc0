--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, quotas ('' for operators), archived ('1', '0' or '' to keep), number of
-- fields to set N, N field/value pairs, then fields to delete. Archiving moves the session
-- between indexes in the same step.
local sid, owner = ARGV[2], ARGV[7]
if not owned(sid, owner) then return false end
local key = session_key(sid)
local archived = ARGV[10]
local was = redis.call('HGET', key, 'archived')
if archived ~= '' and archived ~= was then
  local uid = redis.call('HGET', key, 'user_id')
  local q = quotas(ARGV[9], uid)
  local refused
  if archived == '1' then
    refused = over(q, 'kept_sessions', redis.call('ZCARD', P .. 'arch:u:' .. uid) + 1)
  else
    refused = over(q, 'live_sessions', live_count(uid, ARGV[3]) + 1)
  end
  if refused then return refused end
  redis.call('HSET', key, 'archived', archived)
end
local n = tonumber(ARGV[11])
if n > 0 then redis.call('HSET', key, unpack(ARGV, 12, 11 + 2 * n)) end
if #ARGV > 11 + 2 * n then redis.call('HDEL', key, unpack(ARGV, 12 + 2 * n)) end
touch(sid)
index(sid, summarize(sid))
prune(ARGV[3], 10)
-- What changed, for the session's listeners.
local changes = {}
if archived ~= '' and archived ~= was then changes[1] = (archived == '1') and 'archived' or 'unarchived' end
local named = {}
for i = 12, #ARGV do
  if i >= 12 + 2 * n or (i - 12) % 2 == 0 then named[ARGV[i]] = true end
end
if named.display_name then changes[#changes + 1] = 'renamed' end
if named.description then changes[#changes + 1] = 'described' end
if #changes > 0 then
  announce(sid, 'session', cjson.encode({changes = changes}), redis.call('HGET', SUMMARIES, sid))
end
return redis.call('HGETALL', key)
