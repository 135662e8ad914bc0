--! shard_prelude
-- KEYS = {the running reply's hash}. ARGV: prefix, sid, reply id, lease ms, then pairs of
-- kind ('delta' or 'reasoning') and text. Publishes the pieces to the session's listeners,
-- adds the deltas to the text so far (what a late listener is sent first) and renews the
-- lease; with no pieces it is the reply's heartbeat. Answers 'stop' when someone asked the
-- reply to stop, 'gone' when it is no longer the session's running reply, '' otherwise.
local sid, reply_id, lease = ARGV[2], ARGV[3], ARGV[4]
local key = reply_key(sid)
local running, stop = unpack(redis.call('HMGET', key, 'id', 'stop'))
if running ~= reply_id then return 'gone' end
for i = 5, #ARGV - 1, 2 do
  if ARGV[i] == 'delta' then redis.call('APPEND', reply_text_key(sid), ARGV[i + 1]) end
  announce(sid, ARGV[i], cjson.encode({reply_id = reply_id, text = ARGV[i + 1]}))
end
redis.call('PEXPIRE', key, lease)
redis.call('PEXPIRE', reply_text_key(sid), lease)
if stop then return 'stop' end
return ''
