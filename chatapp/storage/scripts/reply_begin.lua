--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, now_ms, now_iso, expires_ms, expires_iso,
-- owner, token, limit, quotas ('' for operators), reply id, lease ms, then the user's
-- message JSON (none for a retry).
-- Claims the session's one running reply and stores the message that asks for it, in one
-- step: while another reply runs, answers 'BUSY <its id>' and stores nothing. The claim is
-- a lease the reply renews as it goes (reply_progress.lua), so a reply whose worker died
-- frees the session by itself. Answers like append.lua, with the model's context.
local sid, owner, token, limit = ARGV[2], ARGV[7], ARGV[8], tonumber(ARGV[9])
local reply_id, lease = ARGV[11], ARGV[12]
if not owned(sid, owner) then return false end
local running = redis.call('HGET', reply_key(sid), 'id')
if running and running ~= reply_id then return redis.error_reply('BUSY ' .. running) end
if not running then  -- (running == reply_id: this very call, sent again after a lost connection)
  local refused = store_messages(sid, 13, ARGV[10], token, true)
  if refused then return refused end
  redis.call('DEL', reply_key(sid), reply_text_key(sid))
  redis.call('HSET', reply_key(sid), 'id', reply_id, 'started', ARGV[4])
  redis.call('PEXPIRE', reply_key(sid), lease)
  announce(sid, 'reply', cjson.encode({reply_id = reply_id, started_at = ARGV[4]}))
end
return read_tail(sid, limit)
