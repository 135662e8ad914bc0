--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, owner. Asks the session's running reply to stop
-- (it sees the mark at its next piece or heartbeat). Answers the reply's id, '' when none
-- is running, false when the session is not found.
local sid = ARGV[2]
if not owned(sid, ARGV[3]) then return false end
local running = redis.call('HGET', reply_key(sid), 'id')
if not running then return '' end
redis.call('HSET', reply_key(sid), 'stop', '1')
return running
