--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, step, then per step:
--   'begin':  the session leaves the index and enters it again with its title; answers how
--             many messages it holds (the steps below index those, later ones index themselves)
--   'more':   start, count: index messages start .. start+count-1
-- Answers -1 when the session is gone. For `flask search reindex` (chatapp/storage/search.py).
local sid, step = ARGV[2], ARGV[3]
local key = session_key(sid)
local uid = redis.call('HGET', key, 'user_id')
if not uid then return -1 end
if step == 'begin' then
  search.forget(sid, uid)
  local h = {}
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  search.title(sid, h)
  return redis.call('LLEN', messages_key(sid))
end
local start, count = tonumber(ARGV[4]), tonumber(ARGV[5])
local docs = redis.call('LRANGE', messages_key(sid), start, start + count - 1)
if #docs > 0 then search.add(sid, uid, start, docs, 1) end
return #docs
