-- The search index on the Redis Query Engine (FT.*: Redis Stack, Redis 8), on a single server.
-- The writes keep documents (hashes) in the session's shard, which the engine's index
-- (chatapp/storage/search_engine.py: FT.CREATE over every shard's `x:q:`) takes in as they are
-- written, inside the same script:
--   x:q:<sid>:t   the session's title, name and description as words (w: ' word word ... '), k = 1
--   x:q:<sid>:<b> its older messages as words, in sealed blocks (w: '\n_<index> word word ... '
--                 each, a block of up to SEARCH_BLOCK_BYTES), b = 0, 1, ...: written once.
--                 `_<index>` is no word anyone can search for (search_words never makes a '_'),
--                 and it keeps a phrase within its message.
--   both with s = the session id, u = the SHA-1 of its user id (a tag that needs no escaping),
--   and h = the shard's number (an operator's search over everyone goes shard by shard).
--   x:qt:<sid>    its newest messages as words, the same lines (a string, outside the engine's
--                 index: the query scripts read it themselves), until they make a block.
--   x:qn          hash sid -> the number of its sealed blocks
-- Why the newest messages wait outside the engine: it indexes a document whole on every change,
-- and a block that grew by each new message was indexed again and again, each time leaving its
-- older copy for the engine's garbage collector. A post now APPENDs its words to the tail, and
-- a block is indexed once, when it is sealed (bench/results-search-query-engine.md).
local SEARCH_BLOCK_BYTES = 2048
-- The shard's number, from its prefix 'chatapp:v2:{s<number>-<n>}:' (a script may move between shards).
local function search_shard() return string.match(P, '{s(%d+)%-') end
local function search_doc(sid, b) return sx('q:' .. sid .. ':' .. b) end
local function search_tail(sid) return sx('qt:' .. sid) end
local function search_sealed(sid) return tonumber(redis.call('HGET', sx('qn'), sid) or '0') end
local function search_fields(sid, uid)
  return {'s', sid, 'u', redis.sha1hex(uid), 'h', search_shard()}
end
-- The session's messages as words: every block's, then the tail's, in order.
local function search_body(sid)
  local parts = {}
  for b = 0, search_sealed(sid) - 1 do parts[#parts + 1] = redis.call('HGET', search_doc(sid, b), 'w') or '' end
  parts[#parts + 1] = redis.call('GET', search_tail(sid)) or ''
  return table.concat(parts)
end
-- Store `lines` as the session's messages from block `b` on: as many blocks as they fill
-- sealed, the rest the tail; blocks past the last sealed go.
local function search_write(sid, uid, b, lines)
  local before = search_sealed(sid)
  local block, size = {}, 0
  local function seal()
    redis.call('HSET', search_doc(sid, b), 'w', table.concat(block), unpack(search_fields(sid, uid)))
    b, block, size = b + 1, {}, 0
  end
  for _, line in ipairs(lines) do
    if size > 0 and size + #line > SEARCH_BLOCK_BYTES then seal() end
    block[#block + 1], size = line, size + #line
  end
  if size > SEARCH_BLOCK_BYTES then seal() end  -- one message longer than a block
  for gone = b, before - 1 do redis.call('DEL', search_doc(sid, gone)) end
  if b > 0 then redis.call('HSET', sx('qn'), sid, b) else redis.call('HDEL', sx('qn'), sid) end
  if size > 0 then redis.call('SET', search_tail(sid), table.concat(block)) else redis.call('DEL', search_tail(sid)) end
end
local function search_line(index, m)
  local ws = search_words(m)
  return '\n_' .. index .. ' ' .. (#ws > 0 and (table.concat(ws, ' ') .. ' ') or '')
end
-- Messages docs[from..] (JSON), stored at list index `start` on, join the session's tail, which
-- is sealed into blocks once it holds more than one.
search.add = function(sid, uid, start, docs, from)
  local lines = {}
  for i = from, #docs do
    local ok, m = pcall(cjson.decode, docs[i])
    lines[#lines + 1] = search_line(start + i - from, ok and type(m) == 'table' and m.content or '')
  end
  if redis.call('APPEND', search_tail(sid), table.concat(lines)) > SEARCH_BLOCK_BYTES then
    search_write(sid, uid, search_sealed(sid), search_lines(redis.call('GET', search_tail(sid)), '\n_'))
  end
end
-- The session's title, name and description (h: its fields) as the index has them.
search.title = function(sid, h)
  local ws = search_words(table.concat({h.title or '', h.display_name or '', h.description or ''}, ' '))
  local text = #ws > 0 and (' ' .. table.concat(ws, ' ') .. ' ') or ''
  local key = search_doc(sid, 't')
  if (redis.call('HGET', key, 'w') or '') == text then return end
  if text == '' then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'w', text, 'k', 1, unpack(search_fields(sid, h.user_id)))
  end
end
-- The session's messages leave the index (it was cleared); its title stays.
search.clear = function(sid, uid)
  for b = 0, search_sealed(sid) - 1 do redis.call('DEL', search_doc(sid, b)) end
  redis.call('HDEL', sx('qn'), sid)
  redis.call('DEL', search_tail(sid))
end
-- Messages leave the index (replaced by another version, or dropped by an edit): the one at list
-- index `from` when `only`, else every one from it on. The session's blocks and tail are written afresh.
search.drop = function(sid, uid, from, only)
  local kept = {}
  for _, line in ipairs(search_lines(search_body(sid), '\n_')) do
    local i = tonumber(ssub(line, 3, sfind(line, ' ', 3, true) - 1))
    if not (i == from or (not only and i > from)) then kept[#kept + 1] = line end
  end
  search_write(sid, uid, 0, kept)
end
-- The session leaves the index altogether (deleted, expired, or about to be indexed afresh).
search.forget = function(sid, uid)
  search.clear(sid, uid)
  redis.call('DEL', search_doc(sid, 't'))
end
