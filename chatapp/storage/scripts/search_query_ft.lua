--! shard_prelude
-- A search on the Redis Query Engine (search_index_ft.lua keeps its documents). KEYS = {any key
-- of the shard}; ARGV as search_query.lua's, and the same answer. With no user it searches the
-- shard's sessions (an operator's search over everyone runs it on every shard).
-- Each clause is one FT.AGGREGATE over the user's documents (the title's and the message
-- blocks'), grouped by session: a session matches when every clause found it. Its title hits
-- are the clauses its title document holds; its weight, how often its documents hold each
-- clause (the DISMAX scorer's sum of term frequencies, at most 15 a clause).
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
local matches  -- session id -> {title hits, weight}
for _, clause in ipairs(clauses) do
  local rows = redis.call('FT.AGGREGATE', SEARCH_INDEX, scope .. ' ' .. query_of(clause),
    'SCORER', 'DISMAX', 'ADDSCORES', 'GROUPBY', 1, '@s',
    'REDUCE', 'SUM', 1, '@__score', 'AS', 'weight', 'REDUCE', 'MAX', 1, '@k', 'AS', 'title',
    'LIMIT', 0, 1000000)
  local now = {}
  for i = 2, #rows do
    local row = {}
    for j = 1, #rows[i], 2 do row[rows[i][j]] = rows[i][j + 1] end
    local sid = row.s
    local before = matches == nil and {0, 0} or matches[sid]
    if sid and before then
      local title = tonumber(row.title) or 0
      now[sid] = {before[1] + (title > 0 and 1 or 0), before[2] + math.min(15, tonumber(row.weight) or 0)}
    end
  end
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
