-- The built-in search index (any Redis 7, and a Redis Cluster): each user's index of words,
-- kept by the writes themselves, in the user's shard like every other key of theirs. See
-- chatapp/storage/search.py and migrations_none/README.md. For the user's number U
-- (`x:users`: user id -> U; `x:uids`: U -> user id) and a session's number N within the user
-- (`x:n:U`: sid -> N, '#N' -> sid; numbers freed by a deleted session are reused, `x:f:U`):
--   x:wi:U        hash word -> 4 bits per session N: in how many of its messages (at most 15)
--   x:wt:U        hash word -> 1 bit per session N: in its title, name or description
--   x:d:U         zset (scores 0) of the user's words, for `prefix*` by ZRANGEBYLEX
--   x:b:<sid>     the session's messages as words, '\n<index> word word ... ' each (phrases, snippets)
--   x:t:<sid>     its title, name and description as words, ' word word ... '
--   x:gone        expired sessions whose words are still to be taken out (a few per write)
-- A word's sessions are one field of a hash, so a write reads and writes all its words in a
-- few calls (HMGET, HSET), whatever their number.
local SBIT = {128, 64, 32, 16, 8, 4, 2, 1}
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
-- Session n's entry in a word's field: a 4-bit count ('wi') or a bit ('wt'); a field may be
-- shorter than the entry (missing bytes are zeros).
local function entry_of(kind, s, n)
  if not s then return 0 end
  if kind == 'wi' then
    local b = sbyte(s, sfloor(n / 2) + 1) or 0
    if n % 2 == 0 then return sfloor(b / 16) end
    return b % 16
  end
  local b = sbyte(s, sfloor(n / 8) + 1) or 0
  return sfloor(b / SBIT[n % 8 + 1]) % 2
end
local function with_entry(kind, s, n, v)
  s = s or ''
  local per = kind == 'wi' and 2 or 8
  local i = sfloor(n / per) + 1
  if #s < i then s = s .. string.rep('\0', i - #s) end
  local b = sbyte(s, i)
  if kind == 'wi' then
    if n % 2 == 0 then b = v * 16 + b % 16 else b = b - b % 16 + v end
  else
    local bit = SBIT[n % 8 + 1]
    local was = sfloor(b / bit) % 2
    b = b + (v - was) * bit
  end
  return ssub(s, 1, i - 1) .. schar(b) .. ssub(s, i + 1)
end
-- Set session n's entry of each word in `words` (a list) in hash `kind` ('wi' or 'wt') of user
-- u to `change(word, its entry now)` (nil: leave it): one HMGET and one HSET per thousand
-- words, whatever their number. A word new to the user joins the dictionary; a word left in
-- no session of either hash leaves it.
local function search_update(u, n, kind, words, change)
  local key, dict = sx(kind .. ':' .. u), sx('d:' .. u)
  for first = 1, #words, 1000 do
    local chunk = {unpack(words, first, math.min(first + 999, #words))}
    local old = redis.call('HMGET', key, unpack(chunk))
    local sets, dels, added = {}, {}, {}
    for j, w in ipairs(chunk) do
      local v = change(w, entry_of(kind, old[j], n))
      if v ~= nil then
        local field = with_entry(kind, old[j], n, v)
        if sfind(field, '[^%z]') then
          sets[#sets + 1] = w; sets[#sets + 1] = field
          if not old[j] then added[#added + 1] = 0; added[#added + 1] = w end
        elseif old[j] then
          dels[#dels + 1] = w
        end
      end
    end
    if #sets > 0 then redis.call('HSET', key, unpack(sets)) end
    if #added > 0 then redis.call('ZADD', dict, unpack(added)) end
    if #dels > 0 then
      redis.call('HDEL', key, unpack(dels))
      local elsewhere = redis.call('HMGET', sx((kind == 'wi' and 'wt' or 'wi') .. ':' .. u), unpack(dels))
      local gone = {}
      for j, w in ipairs(dels) do
        if not elsewhere[j] then gone[#gone + 1] = w end
      end
      if #gone > 0 then redis.call('ZREM', dict, unpack(gone)) end
    end
  end
end
local function search_zero() return 0 end
-- One message's words (`ws`) counted in holding[word] (each word once a message), the words
-- new to it listed in `words`.
local function tally(ws, holding, words)
  local seen = {}
  for _, w in ipairs(ws) do
    if not seen[w] and #w <= SEARCH_MAX_WORD then
      seen[w] = true
      if not holding[w] then words[#words + 1] = w end
      holding[w] = (holding[w] or 0) + 1
    end
  end
end
-- Messages docs[from..] (JSON), stored at list index `start` on, join the user's index.
search.add = function(sid, uid, start, docs, from)
  local u = search_user(uid, true)
  local n = search_num(sid, u, true)
  local out, holding, words = {}, {}, {}  -- holding[word]: how many of these messages hold it
  for i = from, #docs do
    local ok, m = pcall(cjson.decode, docs[i])
    local ws = search_words(ok and type(m) == 'table' and m.content or '')
    out[#out + 1] = '\n' .. (start + i - from) .. ' '
    if #ws > 0 then out[#out + 1] = table.concat(ws, ' ') .. ' ' end
    tally(ws, holding, words)
  end
  search_update(u, n, 'wi', words, function(w, now)
    if now >= 15 then return nil end
    return math.min(15, now + holding[w])
  end)
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
  search_update(u, n, 'wt', distinct_words(old), search_zero)
  search_update(u, n, 'wt', distinct_words(text), function() return 1 end)
  if text == '' then redis.call('DEL', key) else redis.call('SET', key, text) end
end
-- The session's messages leave the index (it was cleared); its title stays.
search.clear = function(sid, uid)
  local key = sx('b:' .. sid)
  local u = uid and search_user(uid, false)
  local n = u and search_num(sid, u, false)
  if n then search_update(u, n, 'wi', distinct_words(redis.call('GET', key)), search_zero) end
  redis.call('DEL', key)
end
-- Messages leave the index (replaced by another version, or dropped by an edit): the one at list
-- index `from` when `only`, else every one from it on. Their words' counts go down (a count that
-- reached 15 is not known exactly, and stays), and their lines leave x:b.
search.drop = function(sid, uid, from, only)
  local key = sx('b:' .. sid)
  local body = redis.call('GET', key)
  if not body then return end
  local kept, holding, words = {}, {}, {}
  for _, line in ipairs(search_lines(body, '\n')) do
    local space = string.find(line, ' ', 1, true) or (#line + 1)
    local i = tonumber(string.sub(line, 2, space - 1))
    if i and (i == from or (not only and i > from)) then
      local ws = {}
      for w in string.gmatch(string.sub(line, space + 1), '%S+') do ws[#ws + 1] = w end
      tally(ws, holding, words)
    else
      kept[#kept + 1] = line
    end
  end
  local u = uid and search_user(uid, false)
  local n = u and search_num(sid, u, false)
  if n and #words > 0 then
    search_update(u, n, 'wi', words, function(w, now)
      if now >= 15 then return nil end
      return math.max(0, now - holding[w])
    end)
  end
  if #kept == 0 then redis.call('DEL', key) else redis.call('SET', key, table.concat(kept)) end
end
-- The session leaves the index altogether (deleted, expired, or about to be indexed afresh).
search.forget = function(sid, uid)
  local u = uid and search_user(uid, false)
  local n = u and search_num(sid, u, false)
  if n then
    search_update(u, n, 'wi', distinct_words(redis.call('GET', sx('b:' .. sid))), search_zero)
    search_update(u, n, 'wt', distinct_words(redis.call('GET', sx('t:' .. sid))), search_zero)
    local key = sx('n:' .. u)
    redis.call('HDEL', key, sid, '#' .. n)
    redis.call('RPUSH', sx('f:' .. u), n)
    if redis.call('HLEN', key) <= 1 then  -- only its counter left: the user has nothing indexed
      redis.call('DEL', key, sx('f:' .. u), sx('d:' .. u), sx('wi:' .. u), sx('wt:' .. u))
      redis.call('HDEL', sx('users'), uid)
      redis.call('HDEL', sx('uids'), u)
    end
  end
  redis.call('DEL', sx('b:' .. sid), sx('t:' .. sid))
end
