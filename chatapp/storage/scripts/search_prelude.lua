--! search_fold
-- Search: each user's index of words, kept by the writes themselves (store_messages, index,
-- clear, delete, prune and forget call in here), in the user's shard like every other key of
-- theirs. See chatapp/storage/search.py and migrations_none/README.md. For the user's number U
-- (`x:users`: user id -> U; `x:uids`: U -> user id) and a session's number N within the user
-- (`x:n:U`: sid -> N, '#N' -> sid; numbers freed by a deleted session are reused, `x:f:U`):
--   x:c:U:<word>  string, 4 bits per session: in how many of session N's messages (at most 15)
--   x:h:U:<word>  bitmap: bit N set when the word is in session N's title, name or description
--   x:d:U         zset (scores 0) of the user's words, for `prefix*` by ZRANGEBYLEX
--   x:b:<sid>     the session's messages as words, '\n<index> word word ... ' each (phrases, snippets)
--   x:t:<sid>     its title, name and description as words, ' word word ... '
--   x:gone        expired sessions whose words are still to be taken out (a few per write)
local SEARCH_MAX_WORD = 64  -- bytes; a longer word is kept in x:b (phrases) but not looked up alone
local sbyte, ssub, sgsub, sfind, sgmatch = string.byte, string.sub, string.gsub, string.find, string.gmatch
local function sx(name) return P .. 'x:' .. name end
-- Folding (search_fold.lua): a character's replacement from its 4-byte slot, or nil to keep it.
local function fold_slot(pack, index)
  local s = ssub(pack, index * 4 + 1, index * 4 + 4)
  if s == '' or s == '\0\0\0\0' then return nil end
  local nul = sfind(s, '\0', 1, true)
  return nul and ssub(s, 1, nul - 1) or s
end
local function fold2(ch)
  return fold_slot(FOLD2, (sbyte(ch, 1) - 192) * 64 + sbyte(ch, 2) - 256)
end
local function fold3(ch)
  local cp = (sbyte(ch, 1) - 224) * 4096 + (sbyte(ch, 2) - 128) * 64 + sbyte(ch, 3) - 128
  if cp >= 7680 and cp < 8192 then return fold_slot(FOLD_1E, cp - 7680) end
  if cp >= 8192 and cp < 8528 then return fold_slot(FOLD_20, cp - 8192) end
  if cp >= 65280 and cp < 65520 then return fold_slot(FOLD_FF, cp - 65280) end
  return nil
end
-- The words of a text as search compares them: folded, lower case, in order.
local function search_words(text)
  if type(text) ~= 'string' or text == '' then return {} end
  if sfind(text, '[\128-\255]') then
    text = sgsub(text, '[\194-\223][\128-\191]', fold2)
    text = sgsub(text, '[\225\226\239][\128-\191][\128-\191]', fold3)
  end
  local found = {}
  for w in sgmatch(string.lower(text), '[%w\128-\255]+') do found[#found + 1] = w end
  return found
end
-- The distinct words of an x:b or x:t text (each word follows a space; an index, a newline).
local function distinct_words(text)
  local seen, list = {}, {}
  for w in sgmatch(text or '', ' ([^ \n]+)') do
    if not seen[w] and #w <= SEARCH_MAX_WORD then seen[w] = true; list[#list + 1] = w end
  end
  return list
end
local function search_user(uid, create)
  local u = redis.call('HGET', sx('users'), uid)
  if u or not create then return u end
  u = tostring(redis.call('HINCRBY', sx('uids'), 'next', 1))
  redis.call('HSET', sx('users'), uid, u)
  redis.call('HSET', sx('uids'), u, uid)
  return u
end
local function search_num(sid, u, create)
  local key = sx('n:' .. u)
  local n = redis.call('HGET', key, sid)
  if n or not create then return n and tonumber(n) end
  n = redis.call('LPOP', sx('f:' .. u)) or (redis.call('HINCRBY', key, 'next', 1) - 1)
  n = tonumber(n)
  redis.call('HSET', key, sid, n, '#' .. n, sid)
  return n
end
-- Take session n out of `kind` ('c' messages, 'h' titles) for these words; a word in no
-- session of the user any more leaves its key, and the dictionary when `other` has none.
local function search_drop(u, n, kind, other, words)
  for _, w in ipairs(words) do
    local key = sx(kind .. ':' .. u .. ':' .. w)
    if kind == 'c' then
      redis.call('BITFIELD', key, 'SET', 'u4', '#' .. n, 0)
    else
      redis.call('SETBIT', key, n, 0)
    end
    if redis.call('BITCOUNT', key) == 0 then
      redis.call('DEL', key)
      if redis.call('EXISTS', sx(other .. ':' .. u .. ':' .. w)) == 0 then redis.call('ZREM', sx('d:' .. u), w) end
    end
  end
end
-- Messages docs[from..] (JSON), stored at list index `start` on, join the user's index.
search.add = function(sid, uid, start, docs, from)
  local u = search_user(uid, true)
  local n = search_num(sid, u, true)
  local out = {}
  for i = from, #docs do
    local ok, m = pcall(cjson.decode, docs[i])
    local ws = search_words(ok and type(m) == 'table' and m.content or '')
    out[#out + 1] = '\n' .. (start + i - from) .. ' '
    if #ws > 0 then out[#out + 1] = table.concat(ws, ' ') .. ' ' end
    local seen = {}
    for _, w in ipairs(ws) do
      if not seen[w] and #w <= SEARCH_MAX_WORD then
        seen[w] = true
        local c = redis.call('BITFIELD', sx('c:' .. u .. ':' .. w), 'OVERFLOW', 'SAT', 'INCRBY', 'u4', '#' .. n, 1)
        if c[1] == 1 then redis.call('ZADD', sx('d:' .. u), 0, w) end
      end
    end
  end
  redis.call('APPEND', sx('b:' .. sid), table.concat(out))
end
-- The session's title, name and description (h: its fields) as the index has them.
search.title = function(sid, h)
  local ws = search_words(table.concat({h.title or '', h.display_name or '', h.description or ''}, ' '))
  local text = #ws > 0 and (' ' .. table.concat(ws, ' ') .. ' ') or ''
  local key = sx('t:' .. sid)
  local old = redis.call('GET', key) or ''
  if old == text then return end
  local u = search_user(h.user_id, true)
  local n = search_num(sid, u, true)
  search_drop(u, n, 'h', 'c', distinct_words(old))
  for _, w in ipairs(distinct_words(text)) do
    redis.call('SETBIT', sx('h:' .. u .. ':' .. w), n, 1)
    redis.call('ZADD', sx('d:' .. u), 0, w)
  end
  if text == '' then redis.call('DEL', key) else redis.call('SET', key, text) end
end
-- The session's messages leave the index (it was cleared); its title stays.
search.clear = function(sid, uid)
  local key = sx('b:' .. sid)
  local u = uid and search_user(uid, false)
  local n = u and search_num(sid, u, false)
  if n then search_drop(u, n, 'c', 'h', distinct_words(redis.call('GET', key))) end
  redis.call('DEL', key)
end
-- The session leaves the index altogether (deleted, expired, or about to be indexed afresh).
search.forget = function(sid, uid)
  local u = uid and search_user(uid, false)
  local n = u and search_num(sid, u, false)
  if n then
    search_drop(u, n, 'c', 'h', distinct_words(redis.call('GET', sx('b:' .. sid))))
    search_drop(u, n, 'h', 'c', distinct_words(redis.call('GET', sx('t:' .. sid))))
    local key = sx('n:' .. u)
    redis.call('HDEL', key, sid, '#' .. n)
    redis.call('RPUSH', sx('f:' .. u), n)
    if redis.call('HLEN', key) <= 1 then  -- only its counter left: the user has nothing indexed
      redis.call('DEL', key, sx('f:' .. u), sx('d:' .. u))
      redis.call('HDEL', sx('users'), uid)
      redis.call('HDEL', sx('uids'), u)
    end
  end
  redis.call('DEL', sx('b:' .. sid), sx('t:' .. sid))
end
-- An expired session's words go a few per write (taking one out costs its distinct words).
search.gone = function(sid, uid)
  redis.call('RPUSH', sx('gone'), cjson.encode({sid, uid}))
end
search.drain = function(count)
  for _ = 1, count do
    local item = redis.call('LPOP', sx('gone'))
    if not item then return end
    local g = cjson.decode(item)
    if redis.call('EXISTS', session_key(g[1])) == 0 then search.forget(g[1], g[2]) end
  end
end
-- The session's index made afresh from what it holds, for a write that changes stored
-- messages in place (editing one, a new version of a reply): costs the session's messages.
search.refresh = function(sid)
  local h = {}
  local flat = redis.call('HGETALL', session_key(sid))
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  if not h.user_id then return end
  search.forget(sid, h.user_id)
  search.title(sid, h)
  local docs = redis.call('LRANGE', messages_key(sid), 0, -1)
  if #docs > 0 then search.add(sid, h.user_id, 0, docs, 1) end
end
