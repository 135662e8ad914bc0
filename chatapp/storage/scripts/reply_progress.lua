--! shard_prelude
-- KEYS = {the hash of one of the replies (where a cluster routes the call)}. ARGV: prefix,
-- lease ms, then for each reply: its shard's prefix, sid, reply id, number of pieces N, and
-- N pairs of kind ('delta' or 'reasoning') and text. On a cluster every reply of one call
-- is in KEYS[1]'s shard; on one server they may be in any.
-- For each reply still running: publishes its pieces to the session's listeners, adds the
-- deltas to its text so far (what a late listener is sent first) and renews its lease (no
-- pieces: a heartbeat). Answers one word per reply: 'stop' when someone asked it to stop,
-- 'gone' when it is no longer the session's running reply, '' otherwise.
local lease = ARGV[2]
local answers = {}
local i = 3
while i <= #ARGV do
  use_shard(ARGV[i])
  local sid, reply_id, n = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local first = i + 4
  i = first + 2 * n
  local key = reply_key(sid)
  local running, stop = unpack(redis.call('HMGET', key, 'id', 'stop'))
  if running ~= reply_id then
    answers[#answers + 1] = 'gone'
  else
    announce_pieces(sid, reply_id, first, i - 1, true)
    redis.call('PEXPIRE', key, lease)
    redis.call('PEXPIRE', reply_text_key(sid), lease)
    answers[#answers + 1] = stop and 'stop' or ''
  end
end
return answers
