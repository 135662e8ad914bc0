-- Shared by every script. ARGV[1] is the shard's key prefix, 'chatapp:v2:{<tag>}:': every
-- key a script touches starts with it, so all of them live in one cluster slot and one
-- script changes a session and every index it is in atomically (Redis refuses a script
-- under OOM only before its first write, so a refused write leaves nothing behind).
local P, SUMMARIES
local function use_shard(prefix)  -- a script over several shards (one server only) moves between them
  P, SUMMARIES = prefix, prefix .. 'summaries'
end
use_shard(ARGV[1])
-- The search index's upkeep (search_prelude.lua, included at the end of this file): each
-- write below that changes what a session says calls into it, in the same script.
local search = {}
local function session_key(sid) return P .. 's:' .. sid end
local function messages_key(sid) return P .. 'm:' .. sid end
-- Live: the session's bounded stream of events (`e:`), its running reply (`r:` hash: id,
-- started, stop) and that reply's text so far (`rt:`). See chatapp/storage/live.py. Events
-- copy what they tell of, so the stream is kept short: for reconnecting listeners, not as
-- history (that is `m:`): ~1,000 events, gone 15 minutes after the last one.
local EVENTS_MAXLEN, EVENTS_TTL_MS = 1000, 900000
local function events_key(sid) return P .. 'e:' .. sid end
local function reply_key(sid) return P .. 'r:' .. sid end
local function reply_text_key(sid) return P .. 'rt:' .. sid end
-- A JSON object with `"index": n` as its first member (a stored message, or an event naming
-- where its message is stored).
local function with_index(json, n)
  return '{"index":' .. string.format('%d', n) .. ',' .. string.sub(json, 2)
end
-- Tell the session's listeners: kind, data JSON and (for a change to the session) its summary.
local function announce(sid, kind, data, summary)
  local key = events_key(sid)
  local id
  if summary then
    id = redis.call('XADD', key, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'e', kind, 'd', data, 's', summary)
  else
    id = redis.call('XADD', key, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'e', kind, 'd', data)
  end
  redis.call('PEXPIRE', key, EVENTS_TTL_MS)
  return id
end
-- The four indexes a session is in for a state ('live' scored by expiry, 'arch' by last
-- activity): the shard's, its user's, its persona's, and its user's for that persona.
local function scopes(state, uid, persona)
  return {P .. state, P .. state .. ':u:' .. uid, P .. state .. ':p:' .. persona,
          P .. state .. ':up:' .. persona .. ':' .. uid}
end
local function owned(sid, owner)
  if redis.call('EXISTS', session_key(sid)) == 0 then return false end
  return owner == '' or redis.call('HGET', session_key(sid), 'user_id') == owner
end
local function json_string(value)
  if value == false or value == nil then return 'null' end
  return cjson.encode(value)
end
-- A session without a name is titled by its first user message: its first words, at most
-- TITLE_CHARS characters (cut at a word boundary when one is near, then an ellipsis).
local TITLE_CHARS = 60
local function title_from(text)
  text = string.match(string.gsub(text, '%s+', ' '), '^ *(.-) *$')
  if text == '' then return nil end
  local count, space, cut = 0, nil, nil
  for at, char in string.gmatch(text, '()([%z\1-\127\192-\255][\128-\191]*)') do
    count = count + 1
    if count > TITLE_CHARS then cut = at; break end
    if char == ' ' and count > TITLE_CHARS / 3 then space = at end
  end
  if not cut then return text end
  return string.sub(text, 1, (space or cut) - 1) .. '…'
end
-- Gives `h` (the session's fields) a title once it has a user message: in the write that
-- stores that message, so a listing never waits for one. Looks at the first few messages only.
local function entitle(sid, h)
  if h.title or tonumber(h.message_count or '0') == 0 then return end
  for _, doc in ipairs(redis.call('LRANGE', messages_key(sid), 0, 9)) do
    local ok, m = pcall(cjson.decode, doc)
    if ok and type(m) == 'table' and m.role == 'user' and type(m.content) == 'string' then
      local title = title_from(m.content)
      if title then
        redis.call('HSET', session_key(sid), 'title', title)
        h.title = title
        return
      end
    end
  end
end
-- Kept for ever (no expiry): archived or pinned.
local function kept(h) return h.archived == '1' or h.pinned == '1' end
-- The session as the API shows it, kept beside the indexes: a page of a listing is one
-- HMGET of these, sent on without decoding.
local function summarize(sid)
  local h = {}
  local flat = redis.call('HGETALL', session_key(sid))
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  entitle(sid, h)
  local archived = h.archived == '1'
  local summary = '{"session_id":' .. json_string(h.session_id) .. ',"user_id":' .. json_string(h.user_id)
    .. ',"persona":' .. json_string(h.persona) .. ',"display_name":' .. json_string(h.display_name)
    .. ',"title":' .. json_string(h.title)
    .. ',"description":' .. json_string(h.description) .. ',"metadata":' .. (h.metadata or '{}')
    .. ',"created_at":' .. json_string(h.created_at) .. ',"last_activity":' .. json_string(h.last_activity)
    .. ',"message_count":' .. string.format('%d', tonumber(h.message_count or '0'))
    .. ',"archived":' .. (archived and 'true' or 'false')
    .. ',"pinned":' .. (h.pinned == '1' and 'true' or 'false')
    .. ',"expires_at":' .. (kept(h) and 'null' or json_string(h.expires_at)) .. '}'
  redis.call('HSET', SUMMARIES, sid, summary)
  return h
end
-- Put the session in the indexes of its state, out of the others.
-- A pinned session's score in the live indexes: PIN_FLOOR plus its last activity, above every
-- expiry (so it is listed first, newest first, and never pruned) yet exact in a double.
local PIN_FLOOR = 1000000000000000
local function index(sid, h)
  local archived = h.archived == '1'
  local on, off, score = 'live', 'arch', h.expires_ms
  if archived then
    on, off, score = 'arch', 'live', h.last_ms
  elseif h.pinned == '1' then
    score = string.format('%.0f', PIN_FLOOR + tonumber(h.last_ms))
  end
  for _, key in ipairs(scopes(on, h.user_id, h.persona)) do redis.call('ZADD', key, score, sid) end
  for _, key in ipairs(scopes(off, h.user_id, h.persona)) do redis.call('ZREM', key, sid) end
  search.title(sid, h)
end
-- Every write is activity: stamp it and slide the expiry of both keys together (a kept
-- session, archived or pinned, has none).
-- ARGV from 3 on: now_ms, now_iso, expires_ms, expires_iso.
local function touch(sid)
  local key = session_key(sid)
  redis.call('HSET', key, 'last_activity', ARGV[4], 'last_ms', ARGV[3])
  local archived, pinned = unpack(redis.call('HMGET', key, 'archived', 'pinned'))
  if archived == '1' or pinned == '1' then
    redis.call('HDEL', key, 'expires_ms', 'expires_at')
    redis.call('PERSIST', key)
    redis.call('PERSIST', messages_key(sid))
  else
    redis.call('HSET', key, 'expires_ms', ARGV[5], 'expires_at', ARGV[6])
    redis.call('PEXPIREAT', key, ARGV[5])
    redis.call('PEXPIREAT', messages_key(sid), ARGV[5])
  end
end
-- Bytes of messages a user keeps, for the bytes quota: `P sizes` holds each session's,
-- `P used:u:<uid>` the user's total.
local function account(sid, uid, delta)
  if delta == 0 then return end
  local size = redis.call('HINCRBY', P .. 'sizes', sid, delta)
  if size <= 0 then redis.call('HDEL', P .. 'sizes', sid) end
  local used = redis.call('INCRBY', P .. 'used:u:' .. uid, delta)
  if used <= 0 then redis.call('DEL', P .. 'used:u:' .. uid) end
end
local function unaccount(sid, uid)
  account(sid, uid, -tonumber(redis.call('HGET', P .. 'sizes', sid) or '0'))
end
-- Quotas for a visitor: ARGV gives the defaults as 'live kept messages bytes' (0 = none;
-- '' = an operator, who has none); an operator's per-user settings in `P quota:u:<uid>` win.
local QUOTA_NAMES = {'live_sessions', 'kept_sessions', 'messages_per_session', 'bytes'}
local function quotas(spec, uid)
  if spec == '' then return nil end
  local q, i = {}, 1
  for n in string.gmatch(spec, '%d+') do q[QUOTA_NAMES[i]] = tonumber(n); i = i + 1 end
  local override = redis.call('HGETALL', P .. 'quota:u:' .. uid)
  for j = 1, #override, 2 do q[override[j]] = tonumber(override[j + 1]) end
  return q
end
-- An error reply naming the quota when `value` (what the write would make it) is over it.
local function over(q, name, value)
  if q and q[name] and q[name] > 0 and value > q[name] then
    return redis.error_reply('QUOTA ' .. name .. ' ' .. q[name])
  end
  return nil
end
local function live_count(uid, now)
  return redis.call('ZCOUNT', P .. 'live:u:' .. uid, '(' .. now, '+inf')
end
-- Expired sessions' keys went by themselves; drop up to `n` of their index entries and
-- summaries, so a shard that is written to keeps no garbage (no sweeper needed).
local function prune(now, n)
  local expired = redis.call('ZRANGEBYSCORE', P .. 'live', '-inf', now, 'LIMIT', 0, n)
  for _, sid in ipairs(expired) do
    local summary = redis.call('HGET', SUMMARIES, sid)
    if summary then
      local s = cjson.decode(summary)
      for _, key in ipairs(scopes('live', s.user_id, s.persona)) do redis.call('ZREM', key, sid) end
      redis.call('HDEL', SUMMARIES, sid)
      unaccount(sid, s.user_id)
      search.gone(sid, s.user_id)
    else
      redis.call('ZREM', P .. 'live', sid)
    end
  end
  search.drain(1)
  return #expired
end
-- A write is applied once: a retried call (same token) answers without applying it again.
local function already_applied(sid, token)
  if token == '' then return false end
  return redis.call('HGET', session_key(sid), 'write_token') == token
end
-- The session's fields and a page of its messages: the newest `limit` (all when negative)
-- before message index `before` ('' = from the newest). Answers {fields, first index, messages}.
local function read_page(sid, limit, before)
  local fields = redis.call('HGETALL', session_key(sid))
  if limit == 0 then return {fields, 0, {}} end
  local total = redis.call('LLEN', messages_key(sid))
  local stop = total - 1
  if before ~= '' then stop = math.min(tonumber(before), total) - 1 end
  local start = 0
  if limit > 0 then start = math.max(stop - limit + 1, 0) end
  if stop < start then return {fields, start, {}} end
  return {fields, start, redis.call('LRANGE', messages_key(sid), start, stop)}
end
-- The user's most recently active session: live ones first, then archived; or false.
local function latest_session(uid, now)
  local key = P .. 'live:u:' .. uid
  local found = redis.call('ZREVRANGEBYSCORE', key, '(' .. PIN_FLOOR, '(' .. now, 'LIMIT', 0, 1)
  local pinned = redis.call('ZREVRANGEBYSCORE', key, '+inf', PIN_FLOOR, 'LIMIT', 0, 1)
  if #pinned > 0 and (#found == 0 or tonumber(redis.call('HGET', session_key(pinned[1]), 'last_ms') or '0')
      >= tonumber(redis.call('HGET', session_key(found[1]), 'last_ms') or '0')) then
    found = pinned
  end
  if #found == 0 then found = redis.call('ZREVRANGE', P .. 'arch:u:' .. uid, 0, 0) end
  if #found == 0 or redis.call('EXISTS', session_key(found[1])) == 0 then return false end
  return found[1]
end
-- A session whose keys went behind the indexes' back (removed by hand, or evicted by a
-- maxmemory policy other than noeviction): drop its summary and index entries.
local function forget(sid)
  local summary = redis.call('HGET', SUMMARIES, sid)
  if summary then
    local s = cjson.decode(summary)
    for _, state in ipairs({'live', 'arch'}) do
      for _, key in ipairs(scopes(state, s.user_id, s.persona)) do redis.call('ZREM', key, sid) end
    end
    redis.call('HDEL', SUMMARIES, sid)
    unaccount(sid, s.user_id)
    search.gone(sid, s.user_id)
  else
    redis.call('ZREM', P .. 'live', sid)
    redis.call('ZREM', P .. 'arch', sid)
  end
end
-- The summaries of these sessions, false for any that is gone (and forgotten on the way).
local function summaries_of(ids)
  local found = redis.call('HMGET', SUMMARIES, unpack(ids))
  for i, sid in ipairs(ids) do
    if not found[i] or redis.call('EXISTS', session_key(sid)) == 0 then
      forget(sid)
      found[i] = false
    end
  end
  return found
end
-- Tell the listeners of a reply's pieces: ARGV[first .. last] are pairs of kind ('delta' or
-- 'reasoning') and text. `keep_text`: the deltas also go to the text so far (for late listeners).
local function announce_pieces(sid, reply_id, first, last, keep_text)
  for j = first, last, 2 do
    if keep_text and ARGV[j] == 'delta' then redis.call('APPEND', reply_text_key(sid), ARGV[j + 1]) end
    announce(sid, ARGV[j], cjson.encode({reply_id = reply_id, text = ARGV[j + 1]}))
  end
end
-- Append ARGV[first] .. ARGV[#ARGV] (message JSON) to the session, quotas `spec` allowing
-- (an error reply when one refuses; nil when stored), and slide its expiry. `announced`:
-- each is sent to the session's listeners as a `message` event.
local function store_messages(sid, first, spec, token, announced)
  if already_applied(sid, token) or first > #ARGV then return nil end
  local key = session_key(sid)
  local uid = redis.call('HGET', key, 'user_id')
  local q = quotas(spec, uid)
  local count = #ARGV - first + 1
  local size = 0
  for i = first, #ARGV do size = size + #ARGV[i] end
  local refused = over(q, 'messages_per_session', tonumber(redis.call('HGET', key, 'message_count')) + count)
    or over(q, 'bytes', tonumber(redis.call('GET', P .. 'used:u:' .. uid) or '0') + size)
  if refused then return refused end
  local stored = redis.call('RPUSH', messages_key(sid), unpack(ARGV, first))
  search.add(sid, uid, stored - count, ARGV, first)
  redis.call('HINCRBY', key, 'message_count', count)
  redis.call('HSET', key, 'write_token', token)
  account(sid, uid, size)
  touch(sid)
  index(sid, summarize(sid))
  prune(ARGV[3], 10)
  if announced then
    local base = redis.call('LLEN', messages_key(sid)) - count
    for i = first, #ARGV do announce(sid, 'message', with_index(ARGV[i], base + i - first)) end
  end
  return nil
end
-- Versions (a regenerated reply, an edited message, a version flipped): the messages from
-- index `from` on must still be what the caller read, ARGV[first .. first + n - 1], since it
-- built its change on them. The JSON is compared as stored, never decoded and encoded again.
local function tail_is(sid, from, first, n)
  local key = messages_key(sid)
  if redis.call('LLEN', key) ~= from + n then return false end
  if n == 0 then return true end
  local tail = redis.call('LRANGE', key, from, -1)
  for i = 1, n do
    if tail[i] ~= ARGV[first + i - 1] then return false end
  end
  return true
end
local function changed() return redis.error_reply('CHANGED the messages changed meanwhile') end
-- An error reply when replacing ARGV[first .. first + n - 1] (the tail) by ARGV[new_first ..]
-- would go over a quota (`spec` as for store_messages); nil when it may.
local function replace_refused(sid, spec, first, n, new_first)
  local key = session_key(sid)
  local uid = redis.call('HGET', key, 'user_id')
  local q = quotas(spec, uid)
  if not q then return nil end
  local delta = 0
  for i = first, first + n - 1 do delta = delta - #ARGV[i] end
  for i = new_first, #ARGV do delta = delta + #ARGV[i] end
  local count = tonumber(redis.call('HGET', key, 'message_count')) - n + (#ARGV - new_first + 1)
  return over(q, 'messages_per_session', count)
    or (delta > 0 and over(q, 'bytes', tonumber(redis.call('GET', P .. 'used:u:' .. uid) or '0') + delta))
    or nil
end
-- Drop the messages from index `from` on, with their count, bytes and searchable words.
local function drop_tail(sid, from)
  local key = messages_key(sid)
  local tail = redis.call('LRANGE', key, from, -1)
  if #tail == 0 then return end
  local size = 0
  for _, doc in ipairs(tail) do size = size + #doc end
  local uid = redis.call('HGET', session_key(sid), 'user_id')
  search.drop(sid, uid, from, false)
  if from == 0 then redis.call('DEL', key) else redis.call('LTRIM', key, 0, from - 1) end
  redis.call('HINCRBY', session_key(sid), 'message_count', -#tail)
  account(sid, uid, -size)
end
-- Put ARGV[new] in the place of the message at index `at`, stored as ARGV... `old` (its JSON):
-- its bytes and searchable words follow.
local function replace_one(sid, at, old, new)
  local uid = redis.call('HGET', session_key(sid), 'user_id')
  redis.call('LSET', messages_key(sid), at, ARGV[new])
  account(sid, uid, #ARGV[new] - #old)
  search.drop(sid, uid, at, true)
  search.add(sid, uid, at, ARGV, new)
end
-- The session's fields and its newest `limit` messages (0 for none): {fields, first index, messages}.
local function read_tail(sid, limit)
  local total = redis.call('LLEN', messages_key(sid))
  local start = math.max(total - limit, 0)
  local messages = {}
  if limit > 0 then messages = redis.call('LRANGE', messages_key(sid), start, -1) end
  return {redis.call('HGETALL', session_key(sid)), start, messages}
end
--! search_prelude
