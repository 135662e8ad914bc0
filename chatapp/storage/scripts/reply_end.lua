--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- reply id, outcome ('done' or 'error'), token, event data JSON, number of pieces N, N
-- pairs of kind and text (the last pieces, not yet published), then the reply's message
-- JSON (none when there is no text to keep).
-- Publishes the last pieces, stores the reply (no quota: the message it answers was
-- accepted), frees the session for the next one, and tells the listeners how it ended,
-- with the session as it now is and the index its message is stored at. A regenerated
-- reply takes the place of the message it replaces (kept in it as a version by the
-- caller) if that is still there as it was; otherwise it is appended. Answers the
-- session's fields, or false when it is gone.
local sid, reply_id, outcome, token, data = ARGV[2], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local pieces_end = 12 + 2 * tonumber(ARGV[11])
local running = redis.call('HGET', reply_key(sid), 'id') == reply_id
local replaces, was
if running then
  replaces, was = unpack(redis.call('HMGET', reply_key(sid), 'replaces', 'was'))
  announce_pieces(sid, reply_id, 12, pieces_end - 1, false)
  redis.call('DEL', reply_key(sid), reply_text_key(sid))
end
if redis.call('EXISTS', session_key(sid)) == 0 then return false end
if already_applied(sid, token) then return redis.call('HGETALL', session_key(sid)) end
if pieces_end <= #ARGV then
  local key = messages_key(sid)
  local at = replaces and tonumber(replaces)
  if at and redis.call('LINDEX', key, at) == was then
    replace_one(sid, at, was, pieces_end)
    touch(sid)
    index(sid, summarize(sid))
  else
    store_messages(sid, pieces_end, '', token, false)
    at = redis.call('LLEN', key) - 1
  end
  data = with_index(data, at)
end
redis.call('HSET', session_key(sid), 'write_token', token)
announce(sid, outcome, data, redis.call('HGET', SUMMARIES, sid))
return redis.call('HGETALL', session_key(sid))
