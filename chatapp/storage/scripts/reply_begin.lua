--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, limit, quotas ('' for operators), reply id, lease ms, mode, from, N, then N
-- messages as the caller read them (from index `from` on), then the user's message JSON
-- (none for a regenerate).
-- Claims the session's one running reply and stores the message that asks for it, in one
-- step: while another reply runs, answers 'BUSY <its id>' and stores nothing. The claim is
-- a lease the reply renews as it goes (reply_progress.lua), so a reply whose worker died
-- frees the session by itself. Answers like append.lua, with the model's context.
-- mode '' appends the message. 'regenerate': the reply will take the place of the last
-- message (at `from`, which must still be the one read: kept in the claim, reply_end.lua
-- makes it a version of the new one). 'edit': the message replaces the messages from
-- `from` on (still as read; the caller kept them as a version of it). A history that
-- changed since it was read answers 'CHANGED' and stores nothing.
local sid, owner, token, limit = ARGV[2], ARGV[7], ARGV[8], tonumber(ARGV[9])
local reply_id, lease, mode = ARGV[11], ARGV[12], ARGV[13]
local from, n = tonumber(ARGV[14]), tonumber(ARGV[15])
local first = 16 + n  -- the new message, if any
if not owned(sid, owner) then return false end
local running = redis.call('HGET', reply_key(sid), 'id')
if running and running ~= reply_id then return redis.error_reply('BUSY ' .. running) end
if not running then  -- (running == reply_id: this very call, sent again after a lost connection)
  local refused
  if mode == 'regenerate' then
    if not tail_is(sid, from, 16, n) or n ~= 1 then return changed() end
    local uid = redis.call('HGET', session_key(sid), 'user_id')
    local q = quotas(ARGV[10], uid)
    refused = over(q, 'bytes', tonumber(redis.call('GET', P .. 'used:u:' .. uid) or '0') + #ARGV[16])
  elseif mode == 'edit' then
    if not already_applied(sid, token) then
      if not tail_is(sid, from, 16, n) then return changed() end
      refused = replace_refused(sid, ARGV[10], 16, n, first)
      if not refused then drop_tail(sid, from) end
    end
  else
    refused = store_messages(sid, first, ARGV[10], token, true)
  end
  if refused then return refused end
  if mode == 'edit' then store_messages(sid, first, '', token, true) end
  redis.call('DEL', reply_key(sid), reply_text_key(sid))
  redis.call('HSET', reply_key(sid), 'id', reply_id, 'started', ARGV[4])
  local started = {reply_id = reply_id, started_at = ARGV[4]}
  if mode == 'regenerate' then
    redis.call('HSET', reply_key(sid), 'replaces', from, 'was', ARGV[16])
    started.replaces = from
  end
  redis.call('PEXPIRE', reply_key(sid), lease)
  announce(sid, 'reply', cjson.encode(started))
end
return read_tail(sid, limit)
