--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, quotas ('' for operators), archived ('1', '0' or '' to keep), pinned (the
-- same), number of fields to set N, N field/value pairs, then fields to delete. Archiving
-- and pinning move the session between indexes (or within one) in the same step; both
-- keep it for ever, and undoing the last of them restores the sliding expiry.
local sid, owner = ARGV[2], ARGV[7]
if not owned(sid, owner) then return false end
local key = session_key(sid)
local archived, pinned = ARGV[10], ARGV[11]
local was, was_pinned = unpack(redis.call('HMGET', key, 'archived', 'pinned'))
was_pinned = was_pinned or '0'
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
if pinned ~= '' and pinned ~= was_pinned then redis.call('HSET', key, 'pinned', pinned) end
local first = 13
local n = tonumber(ARGV[12])
if n > 0 then redis.call('HSET', key, unpack(ARGV, first, first - 1 + 2 * n)) end
if #ARGV > first - 1 + 2 * n then redis.call('HDEL', key, unpack(ARGV, first + 2 * n)) end
touch(sid)
index(sid, summarize(sid))
prune(ARGV[3], 10)
-- What changed, for the session's listeners.
local changes = {}
if archived ~= '' and archived ~= was then changes[1] = (archived == '1') and 'archived' or 'unarchived' end
if pinned ~= '' and pinned ~= was_pinned then changes[#changes + 1] = (pinned == '1') and 'pinned' or 'unpinned' end
local named = {}
for i = first, #ARGV do
  if i >= first + 2 * n or (i - first) % 2 == 0 then named[ARGV[i]] = true end
end
if named.display_name then changes[#changes + 1] = 'renamed' end
if named.description then changes[#changes + 1] = 'described' end
if #changes > 0 then
  announce(sid, 'session', cjson.encode({changes = changes}), redis.call('HGET', SUMMARIES, sid))
end
return redis.call('HGETALL', key)
