--! shard_prelude
-- KEYS = {the shard's x:users}. ARGV: prefix, user id ('' = every user of the shard), now_ms,
-- offset, count, persona ('' = any), archived ('1' only archived, '0' only live, '' both),
-- from_ms and to_ms of the last activity ('' = open), snippets per session, number of
-- clauses, then per clause: '1' when its last word is a prefix, its number of words, the words
-- (folded as search_words folds them).
-- A session matches when every clause is in it: each word in its title or some message, and
-- a clause of several words as a phrase in one of them. Ranked by how many clauses its title
-- holds, then by how often its messages hold them, then by recency. Answers {total, page},
-- each of the page {sid, summary, title hits, weight, last_ms, {message index, JSON, ...}}.
-- Sessions found dead on the way (expired, deleted behind the index's back) are never
-- answered, and leave the index a few at a time.
local only_uid, now = ARGV[2], tonumber(ARGV[3])
local offset, count = tonumber(ARGV[4]), tonumber(ARGV[5])
local persona, archived = ARGV[6], ARGV[7]
local from_ms, to_ms = tonumber(ARGV[8]), tonumber(ARGV[9])
local per_session = tonumber(ARGV[10])
local MAX_EXPANSIONS = 256  -- words a prefix stands for, at most (the first in byte order)
local MAX_LOOKUPS = 1024  -- words a whole query looks up, at most (its prefixes' included)
local clauses, at = {}, 12
for c = 1, tonumber(ARGV[11]) do
  local clause = {prefix = ARGV[at] == '1', words = {}}
  local n = tonumber(ARGV[at + 1])
  for k = 1, n do clause.words[k] = ARGV[at + 1 + k] end
  at = at + 2 + n
  -- Where a clause is in a text of words: ' a b ' (or ' a b' for a prefix: at a word's start).
  clause.needle = ' ' .. table.concat(clause.words, ' ') .. (clause.prefix and '' or ' ')
  clauses[c] = clause
end
local byte, find, floor = string.byte, string.find, math.floor
local BIT = {128, 64, 32, 16, 8, 4, 2, 1}
local looked_up = 0  -- words looked up so far: MAX_LOOKUPS bounds what a query of prefixes costs
local function add_count(p, n, v)
  if v == 0 then return end
  local had = p.counts[n]
  if not had and not p.title[n] then p.size = p.size + 1 end
  if not had or v > had then p.counts[n] = v end
end
-- What one word of a clause stands for in user u's index, by session number: `counts[n]` (in
-- how many of session n's messages, the most of any word it stands for) and `title[n]` (in
-- its title); `size`: how many sessions. A prefix stands for each word it begins.
local function position(u, word, prefix)
  local words = {word}
  if prefix then
    local room = math.min(MAX_EXPANSIONS, MAX_LOOKUPS - looked_up)
    words = room > 0 and redis.call('ZRANGEBYLEX', sx('d:' .. u), '[' .. word, '[' .. word .. '\255', 'LIMIT', 0, room) or {}
  end
  local p = {counts = {}, title = {}, size = 0}
  if #words == 0 then return p end
  looked_up = looked_up + #words
  local cs = redis.call('HMGET', sx('wi:' .. u), unpack(words))
  local hs = redis.call('HMGET', sx('wt:' .. u), unpack(words))
  for j = 1, #words do
    local c, h = cs[j], hs[j]
    local i = 1
    while c do  -- two sessions a byte; find skips the zero bytes in C
      i = find(c, '[^%z]', i)
      if not i then break end
      local b = byte(c, i)
      add_count(p, (i - 1) * 2, floor(b / 16))
      add_count(p, (i - 1) * 2 + 1, b % 16)
      i = i + 1
    end
    i = 1
    while h do
      i = find(h, '[^%z]', i)
      if not i then break end
      local b = byte(h, i)
      for k = 0, 7 do
        local n = (i - 1) * 8 + k
        if floor(b / BIT[k + 1]) % 2 == 1 then
          if not p.counts[n] and not p.title[n] then p.size = p.size + 1 end
          p.title[n] = true
        end
      end
      i = i + 1
    end
  end
  return p
end
local found, dead = {}, {}
-- Adds to `found` the sessions of user `uid` (number u) that match.
local function search_user_sessions(uid, u)
  local smallest
  for _, clause in ipairs(clauses) do
    clause.positions = {}
    for k, w in ipairs(clause.words) do
      local p = position(u, w, clause.prefix and k == #clause.words)
      if p.size == 0 then return end  -- a word this user never wrote: nothing of theirs matches
      clause.positions[k] = p
      if not smallest or p.size < smallest.size then smallest = p end
    end
  end
  local kept = {}
  local function consider(n)
    for _, clause in ipairs(clauses) do
      for _, p in ipairs(clause.positions) do
        if not p.counts[n] and not p.title[n] then return end
      end
    end
    kept[#kept + 1] = n
  end
  for n in pairs(smallest.counts) do consider(n) end
  for n in pairs(smallest.title) do
    if not smallest.counts[n] then consider(n) end
  end
  for first = 1, #kept, 1000 do
    local fields = {}
    for i = first, math.min(first + 999, #kept) do fields[#fields + 1] = '#' .. kept[i] end
    local sids = redis.call('HMGET', sx('n:' .. u), unpack(fields))
    for j, sid in ipairs(sids) do
      local n = kept[first + j - 1]
      local h = sid and redis.call('HMGET', session_key(sid), 'user_id', 'persona', 'archived', 'last_ms', 'expires_ms')
      if sid and not h[1] then
        dead[#dead + 1] = {sid, uid}
      elseif sid and h[1] == uid and (h[3] == '1' or tonumber(h[5] or '0') > now)
        and (persona == '' or h[2] == persona) and (archived == '' or (h[3] == '1') == (archived == '1'))
        and (not from_ms or tonumber(h[4]) >= from_ms) and (not to_ms or tonumber(h[4]) < to_ms) then
        local title, body
        local ok, hits, weight = true, 0, 0
        for _, clause in ipairs(clauses) do
          if #clause.words > 1 then  -- a phrase: in the title, or in one message
            title = title or redis.call('GET', sx('t:' .. sid)) or ''
            local in_title = find(title, clause.needle, 1, true) ~= nil
            if not in_title then
              body = body or redis.call('GET', sx('b:' .. sid)) or ''
              if not find(body, clause.needle, 1, true) then ok = false; break end
            else
              hits = hits + 1
            end
            local least = 15
            for _, p in ipairs(clause.positions) do least = math.min(least, p.counts[n] or 0) end
            weight = weight + least
          else
            local p = clause.positions[1]
            if p.title[n] then hits = hits + 1 end
            weight = weight + (p.counts[n] or 0)
          end
        end
        if ok then found[#found + 1] = {sid, hits, weight, tonumber(h[4]) or 0} end
      end
    end
  end
end
if only_uid ~= '' then
  local u = redis.call('HGET', sx('users'), only_uid)
  if u then search_user_sessions(only_uid, u) end
else
  local users = redis.call('HGETALL', sx('users'))
  for i = 1, #users, 2 do search_user_sessions(users[i], users[i + 1]) end
end
table.sort(found, function(a, b)
  if a[2] ~= b[2] then return a[2] > b[2] end
  if a[3] ~= b[3] then return a[3] > b[3] end
  if a[4] ~= b[4] then return a[4] > b[4] end
  return a[1] < b[1]
end)
-- The page, each session with the messages that hold the most clauses (then the newest).
local page = {}
for i = offset + 1, math.min(offset + count, #found) do
  local sid, hits, weight, last = unpack(found[i])
  local best = {}
  if per_session > 0 then
    -- Where each message starts in its words (plain finds: Lua's patterns go a byte at a time),
    -- then each clause's hits, one per message, placed by a binary search over those starts.
    local body = redis.call('GET', sx('b:' .. sid)) or ''
    local starts, indexes, at = {}, {}, 1
    while true do
      local s = find(body, '\n', at, true)
      if not s then break end
      local space = find(body, ' ', s, true)
      starts[#starts + 1], indexes[#indexes + 1] = s, tonumber(string.sub(body, s + 1, space - 1))
      at = space + 1
    end
    local matched = {}
    for _, clause in ipairs(clauses) do
      local from = 1
      while true do
        local hit = find(body, clause.needle, from, true)
        if not hit then break end
        local low, high = 1, #starts
        while low < high do
          local mid = floor((low + high + 1) / 2)
          if starts[mid] < hit then low = mid else high = mid - 1 end
        end
        matched[low] = (matched[low] or 0) + 1
        from = (starts[low + 1] or #body) + 1
      end
    end
    for k, n in pairs(matched) do best[#best + 1] = {n, indexes[k]} end
    table.sort(best, function(a, b)
      if a[1] ~= b[1] then return a[1] > b[1] end
      return a[2] > b[2]
    end)
  end
  local snippets = {}
  for k = 1, math.min(per_session, #best) do
    local doc = redis.call('LINDEX', messages_key(sid), best[k][2])
    if doc then snippets[#snippets + 1] = best[k][2]; snippets[#snippets + 1] = doc end
  end
  page[#page + 1] = {sid, redis.call('HGET', SUMMARIES, sid) or '', hits, weight, tostring(last), snippets}
end
for _, d in ipairs(dead) do search.gone(d[1], d[2]) end
search.drain(math.min(#dead, 2))
return {#found, page}
