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
local function nibble(s, n)
  if not s then return 0 end
  local b = byte(s, floor(n / 2) + 1) or 0
  if n % 2 == 0 then return floor(b / 16) end
  return b % 16
end
local function bit(s, n)
  if not s then return 0 end
  local b = byte(s, floor(n / 8) + 1) or 0
  return floor(b / BIT[n % 8 + 1]) % 2
end
-- The keys a word stands for in user u's index: {counts, title bitmap} of it (or of each word
-- it is a prefix of).
local function alternatives(u, word, prefix)
  local words = {word}
  if prefix then
    words = redis.call('ZRANGEBYLEX', sx('d:' .. u), '[' .. word, '[' .. word .. '\255', 'LIMIT', 0, MAX_EXPANSIONS)
  end
  local alts = {}
  for _, w in ipairs(words) do
    local c = redis.call('GET', sx('c:' .. u .. ':' .. w))
    local h = redis.call('GET', sx('h:' .. u .. ':' .. w))
    if c or h then alts[#alts + 1] = {c, h} end
  end
  return alts
end
-- Session numbers with a non-zero entry in counts `c` or a set bit in bitmap `h`.
local function members(c, h, into, seen)
  local i = 1
  while c do
    i = find(c, '[^%z]', i)
    if not i then break end
    local b, n = byte(c, i), (i - 1) * 2
    if b >= 16 and not seen[n] then seen[n] = true; into[#into + 1] = n end
    if b % 16 > 0 and not seen[n + 1] then seen[n + 1] = true; into[#into + 1] = n + 1 end
    i = i + 1
  end
  i = 1
  while h do
    i = find(h, '[^%z]', i)
    if not i then break end
    for k = 0, 7 do
      local n = (i - 1) * 8 + k
      if bit(h, n) == 1 and not seen[n] then seen[n] = true; into[#into + 1] = n end
    end
    i = i + 1
  end
end
local found, dead = {}, {}
-- Adds to `found` the sessions of user `uid` (number u) that match.
local function search_user_sessions(uid, u)
  for _, clause in ipairs(clauses) do
    clause.alts = {}
    for k, w in ipairs(clause.words) do
      local alts = alternatives(u, w, clause.prefix and k == #clause.words)
      if #alts == 0 then return end  -- a word this user never wrote: nothing of theirs matches
      clause.alts[k] = alts
    end
  end
  local nums, seen = {}, {}
  for _, alt in ipairs(clauses[1].alts[1]) do members(alt[1], alt[2], nums, seen) end
  local function present(alts, n)
    for _, alt in ipairs(alts) do
      if nibble(alt[1], n) > 0 or bit(alt[2], n) == 1 then return true end
    end
    return false
  end
  local kept = {}
  for _, n in ipairs(nums) do
    local ok = true
    for _, clause in ipairs(clauses) do
      for _, alts in ipairs(clause.alts) do
        if not present(alts, n) then ok = false; break end
      end
      if not ok then break end
    end
    if ok then kept[#kept + 1] = n end
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
            for _, alts in ipairs(clause.alts) do
              local most = 0
              for _, alt in ipairs(alts) do most = math.max(most, nibble(alt[1], n)) end
              least = math.min(least, most)
            end
            weight = weight + least
          else
            local in_title, most = false, 0
            for _, alt in ipairs(clause.alts[1]) do
              if bit(alt[2], n) == 1 then in_title = true end
              most = math.max(most, nibble(alt[1], n))
            end
            if in_title then hits = hits + 1 end
            weight = weight + most
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
