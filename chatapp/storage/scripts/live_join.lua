--! shard_prelude
-- KEYS = {session hash}. ARGV: prefix, sid, owner. What a new listener starts from, read in
-- one step so nothing falls between: {running reply id or '', its text so far, the id of
-- the stream's newest event ('0-0' when none), the id of its oldest ('' when none), when
-- the running reply started ('' when none), the index of the message it will replace
-- ('' when none: it will be appended)}; false when the session is not found.
local sid = ARGV[2]
if not owned(sid, ARGV[3]) then return false end
local key = events_key(sid)
local newest = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
local oldest = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)
local running, started, replaces = unpack(redis.call('HMGET', reply_key(sid), 'id', 'started', 'replaces'))
local text = ''
if running then text = redis.call('GET', reply_text_key(sid)) or '' end
return {running or '', text, newest[1] and newest[1][1] or '0-0', oldest[1] and oldest[1][1] or '', started or '',
        running and replaces or ''}
