--! shard_prelude
-- A search on the Redis Query Engine (search_index_ft.lua keeps its documents). KEYS = {any key
-- of the shard}; ARGV as search_query.lua's, and the same answer. With no user it searches the
-- shard's sessions (an operator's search over everyone runs it on every shard).
-- Each clause is one FT.AGGREGATE over the user's documents (the title's and the sealed message
-- blocks'), grouped by session, and a look through the tails of the user's sessions (their
-- newest messages, which search_index_ft.lua keeps outside the engine): a session matches when
-- every clause found it in one or the other. Its title hits are the clauses its title document
-- holds; its weight, how often its messages hold each clause (the DISMAX scorer's sum of term
-- frequencies, and the tail's hits, at most 15 a clause).
local SEARCH_INDEX = 'chatapp:v2:search'  -- chatapp/storage/search_engine.py creates it
local f = search_filters()
local clauses = search_clauses(11)
local scope = f.uid ~= '' and ('@u:{' .. redis.sha1hex(f.uid) .. '}') or ('@h:{' .. search_shard() .. '}')
-- A clause in the engine's query syntax: a word, a prefix (`word*`), or a phrase (its words in
-- a row, the last one perhaps a prefix). The words are folded, so they hold no syntax of it.
local function query_of(clause)
  local words = {unpack(clause.words)}
  if clause.prefix then words[#words] = words[#words] .. '*' end
  if #words == 1 then return words[1] end
  return '(' .. table.concat(words, ' ') .. ')=>{$slop:0;$inorder:true}'
end
-- The tails of the sessions in scope: the user's (or, for everyone, the shard's), live and archived.
local tails = {}
do
  local owner = f.uid ~= '' and (':u:' .. f.uid) or ''
  local sids = redis.call('ZRANGE', P .. 'live' .. owner, 0, -1)
  for _, sid in ipairs(redis.call('ZRANGE', P .. 'arch' .. owner, 0, -1)) do sids[#sids + 1] = sid end
  for first = 1, #sids, 1000 do
    local keys = {}
    for i = first, math.min(first + 999, #sids) do keys[#keys + 1] = search_tail(sids[i]) end
    local texts = redis.call('MGET', unpack(keys))
    for k = 1, #keys do
      if texts[k] then tails[sids[first + k - 1]] = texts[k] end
    end
  end
end
-- How often a tail holds a clause.
local function tail_hits(text, needle)
  local n, at = 0, 1
  while true do
    local s = sfind(text, needle, at, true)
    if not s then return n end
    n, at = n + 1, s + 1
  end
end
local matches  -- session id -> {title hits, weight}
-- What a session holds of the clauses before this one: nil when it missed one.
local function prior(sid)
  if matches == nil then return {0, 0} end
  return matches[sid]
end
for _, clause in ipairs(clauses) do
  local rows = redis.call('FT.AGGREGATE', SEARCH_INDEX, scope .. ' ' .. query_of(clause),
    'SCORER', 'DISMAX', 'ADDSCORES', 'GROUPBY', 1, '@s',
    'REDUCE', 'SUM', 1, '@__score', 'AS', 'weight', 'REDUCE', 'MAX', 1, '@k', 'AS', 'title',
    'LIMIT', 0, 1000000)
  local now = {}  -- session id -> {title hits with this clause, this clause's weight}
  for i = 2, #rows do
    local row = {}
    for j = 1, #rows[i], 2 do row[rows[i][j]] = rows[i][j + 1] end
    local before = row.s and prior(row.s)
    if before then
      local title = tonumber(row.title) or 0
      now[row.s] = {before[1] + (title > 0 and 1 or 0), tonumber(row.weight) or 0}
    end
  end
  for sid, text in pairs(tails) do
    local before = prior(sid)
    local hits = before and tail_hits(text, clause.needle) or 0
    if hits > 0 then
      local m = now[sid] or {before[1], 0}
      m[2] = m[2] + hits
      now[sid] = m
    end
  end
  for sid, m in pairs(now) do now[sid] = {m[1], prior(sid)[2] + math.min(15, m[2])} end
  matches = now
  if next(matches) == nil then break end  -- a clause nothing holds: nothing matches
end
local found, dead = {}, {}
for sid, m in pairs(matches or {}) do
  local user, last = search_candidate(sid, f.uid, f)
  if user == false then
    dead[#dead + 1] = {sid, f.uid}
  elseif user then
    found[#found + 1] = {sid, m[1], m[2], last}
  end
end
return search_answer(found, f, clauses, search_body, '\n_', dead)
