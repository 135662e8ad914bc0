--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, quotas ('' for operators), whole ('1' or '0'), from, N, then N messages as
-- the caller read them (from index `from` on), then the messages that replace them.
-- Shows another version of a message: the caller swapped it (and, for a user message, the
-- conversation that followed it) in the JSON it read; this stores that if those messages are
-- still as read ('CHANGED' otherwise) and no reply runs ('BUSY'), and tells the listeners of
-- each replacing message (`message` events with their index). whole '1': the N messages are
-- everything from `from` on, and all of them are replaced; '0': the one message at `from`
-- is replaced by one, wherever it is. Answers the session's fields.
local sid, owner, token = ARGV[2], ARGV[7], ARGV[8]
local whole, from, n = ARGV[10] == '1', tonumber(ARGV[11]), tonumber(ARGV[12])
local first = 13 + n
if not owned(sid, owner) then return false end
if already_applied(sid, token) then return redis.call('HGETALL', session_key(sid)) end
local running = redis.call('HGET', reply_key(sid), 'id')
if running then return redis.error_reply('BUSY ' .. running) end
if whole then
  if not tail_is(sid, from, 13, n) then return changed() end
  local refused = replace_refused(sid, ARGV[9], 13, n, first)
  if refused then return refused end
  drop_tail(sid, from)
  store_messages(sid, first, '', token, true)
else
  local key = messages_key(sid)
  if n ~= 1 or first ~= #ARGV or redis.call('LINDEX', key, from) ~= ARGV[13] then return changed() end
  local refused = replace_refused(sid, ARGV[9], 13, 1, first)
  if refused then return refused end
  replace_one(sid, from, ARGV[13], first)
  redis.call('HSET', session_key(sid), 'write_token', token)
  touch(sid)
  index(sid, summarize(sid))
  announce(sid, 'message', with_index(ARGV[first], from))
end
return redis.call('HGETALL', session_key(sid))
