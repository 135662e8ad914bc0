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
local f = search_filters()
local MAX_EXPANSIONS = 256  -- words a prefix stands for, at most (the first in byte order)
local MAX_LOOKUPS = 1024  -- words a whole query looks up, at most (its prefixes' included)
local clauses = search_clauses(11)
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
      local user, last
      if sid then user, last = search_candidate(sid, uid, f) end
      if user == false then
        dead[#dead + 1] = {sid, uid}
      elseif user then
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
        if ok then found[#found + 1] = {sid, hits, weight, last} end
      end
    end
  end
end
if f.uid ~= '' then
  local u = redis.call('HGET', sx('users'), f.uid)
  if u then search_user_sessions(f.uid, u) end
else
  local users = redis.call('HGETALL', sx('users'))
  for i = 1, #users, 2 do search_user_sessions(users[i], users[i + 1]) end
end
local function body_of(sid) return redis.call('GET', sx('b:' .. sid)) or '' end
return search_answer(found, f, clauses, body_of, '\n', dead)
