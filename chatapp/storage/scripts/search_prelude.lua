--! search_fold
-- Search: what both engines share. The words of a text (folded by search_fold.lua), the
-- queue of expired sessions whose words are still to be taken out, a session's index made
-- afresh, and the choice of snippets. The index itself is the engine's part, included below:
-- search_index.lua (built-in, any Redis 7) or search_index_ft.lua (the Redis Query Engine),
-- chosen at start-up (chatapp/storage/search_engine.py). Either defines search.add, .title,
-- .clear, .drop and .forget, which the writes call (store_messages, index, clear, delete,
-- prune), in the same script.
local SEARCH_MAX_WORD = 64  -- bytes; a longer word is kept in x:b (phrases) but not looked up alone
local sbyte, ssub, sgsub, sfind, sgmatch, schar = string.byte, string.sub, string.gsub, string.find, string.gmatch, string.char
local sfloor = math.floor
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
-- The lines of a text of words, one a message: each starts with `mark` ('\n' on the built-in
-- engine, '\n_' on the Query Engine), then the message's index, a space and its words.
local function search_lines(text, mark)
  local lines, at = {}, sfind(text, mark, 1, true)
  while at do
    local e = sfind(text, mark, at + #mark, true)
    lines[#lines + 1] = ssub(text, at, (e or (#text + 1)) - 1)
    at = e
  end
  return lines
end
--! search_index
-- A query's clauses from ARGV[at] on (their number, then per clause: '1' when its last word is
-- a prefix, its number of words, the words, folded as search_words folds them), each with the
-- needle that finds it in a text of words: ' a b ' (' a b' for a prefix: at a word's start).
local function search_clauses(at)
  local clauses, i = {}, at + 1
  for c = 1, tonumber(ARGV[at]) do
    local clause = {prefix = ARGV[i] == '1', words = {}}
    local n = tonumber(ARGV[i + 1])
    for k = 1, n do clause.words[k] = ARGV[i + 1 + k] end
    i = i + 2 + n
    clause.needle = ' ' .. table.concat(clause.words, ' ') .. (clause.prefix and '' or ' ')
    clauses[c] = clause
  end
  return clauses
end
-- The messages of a session's words (`body`: lines `mark`<index> word word ... ) that hold the
-- most clauses, then the newest: {{clauses held, message index}, ...}, best first.
local function search_best(body, clauses, mark)
  -- Where each message starts (plain finds: Lua's patterns go a byte at a time), then each
  -- clause's hits, one per message, placed by a binary search over those starts.
  local starts, indexes, at = {}, {}, 1
  while true do
    local s = sfind(body, mark, at, true)
    if not s then break end
    local space = sfind(body, ' ', s, true)
    starts[#starts + 1], indexes[#indexes + 1] = s, tonumber(ssub(body, s + #mark, space - 1))
    at = space + 1
  end
  local matched = {}
  for _, clause in ipairs(clauses) do
    local from = 1
    while true do
      local hit = sfind(body, clause.needle, from, true)
      if not hit then break end
      local low, high = 1, #starts
      while low < high do
        local mid = sfloor((low + high + 1) / 2)
        if starts[mid] < hit then low = mid else high = mid - 1 end
      end
      matched[low] = (matched[low] or 0) + 1
      from = (starts[low + 1] or #body) + 1
    end
  end
  local best = {}
  for k, n in pairs(matched) do best[#best + 1] = {n, indexes[k]} end
  table.sort(best, function(a, b)
    if a[1] ~= b[1] then return a[1] > b[1] end
    return a[2] > b[2]
  end)
  return best
end
-- The query scripts' filters (ARGV[2] to ARGV[10]: search_query.lua says what each is).
local function search_filters()
  return {uid = ARGV[2], now = tonumber(ARGV[3]), offset = tonumber(ARGV[4]), count = tonumber(ARGV[5]),
          persona = ARGV[6], archived = ARGV[7], from_ms = tonumber(ARGV[8]), to_ms = tonumber(ARGV[9]),
          per_session = tonumber(ARGV[10])}
end
-- Session sid as a search sees it: false when it is gone (deleted or expired behind the
-- index's back: its words are to leave the index), nil when it may not answer (not user
-- `uid`'s, '' = anyone's; past its expiry; outside the filters), else its user and last activity.
local function search_candidate(sid, uid, f)
  local h = redis.call('HMGET', session_key(sid), 'user_id', 'persona', 'archived', 'last_ms', 'expires_ms')
  if not h[1] then return false end
  local last = tonumber(h[4]) or 0
  if (uid ~= '' and h[1] ~= uid) or (h[5] and tonumber(h[5]) <= f.now)  -- (a kept session has no expiry)
    or (f.persona ~= '' and h[2] ~= f.persona) or (f.archived ~= '' and (h[3] == '1') ~= (f.archived == '1'))
    or (f.from_ms and last < f.from_ms) or (f.to_ms and last >= f.to_ms) then
    return nil
  end
  return h[1], last
end
-- The answer of a query script: `found` ({sid, title hits, weight, last_ms} each) ranked by
-- how many clauses the title holds, then by weight, then by recency; {total, page}, each of the
-- page {sid, summary, title hits, weight, last_ms, {message index, JSON, ...}} with the
-- messages that hold the most clauses (then the newest), found in the session's words
-- (`body_of(sid)`, lines starting `mark`). `dead` sessions ({sid, uid}) leave the index.
local function search_answer(found, f, clauses, body_of, mark, dead)
  table.sort(found, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    if a[3] ~= b[3] then return a[3] > b[3] end
    if a[4] ~= b[4] then return a[4] > b[4] end
    return a[1] < b[1]
  end)
  local page = {}
  for i = f.offset + 1, math.min(f.offset + f.count, #found) do
    local sid, hits, weight, last = unpack(found[i])
    local best = f.per_session > 0 and search_best(body_of(sid), clauses, mark) or {}
    local snippets = {}
    for k = 1, math.min(f.per_session, #best) do
      local doc = redis.call('LINDEX', messages_key(sid), best[k][2])
      if doc then snippets[#snippets + 1] = best[k][2]; snippets[#snippets + 1] = doc end
    end
    page[#page + 1] = {sid, redis.call('HGET', SUMMARIES, sid) or '', hits, tostring(weight), tostring(last), snippets}
  end
  for _, d in ipairs(dead) do search.gone(d[1], d[2]) end
  search.drain(math.min(#dead, 2))
  return {#found, page}
end
-- An expired session's words go a few per write.
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
