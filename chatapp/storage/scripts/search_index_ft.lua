-- The search index on the Redis Query Engine (FT.*: Redis Stack, Redis 8), on a single server.
-- The writes keep documents (hashes) in the session's shard, which the engine's index
-- (chatapp/storage/search_engine.py: FT.CREATE over every shard's `x:q:`) takes in as they are
-- written, inside the same script:
--   x:q:<sid>:t   the session's title, name and description as words (w: ' word word ... '), k = 1
--   x:q:<sid>:<b> its messages as words, in blocks (w: '\n_<index> word word ... ' each, a block
--                 of up to SEARCH_BLOCK_BYTES): the engine indexes a document whole on every
--                 change, so a new message costs its block, not its whole session. `_<index>`
--                 is no word anyone can search for (search_words never makes a '_'), and it
--                 keeps a phrase within its message.
--   both with s = the session id, u = the SHA-1 of its user id (a tag that needs no escaping),
--   and h = the shard's number (an operator's search over everyone goes shard by shard).
--   x:qn          hash sid -> the number of its last block
local SEARCH_BLOCK_BYTES = 2048
-- The shard's number, from its prefix 'chatapp:v2:{s<number>-<n>}:' (a script may move between shards).
local function search_shard() return string.match(P, '{s(%d+)%-') end
local function search_doc(sid, b) return sx('q:' .. sid .. ':' .. b) end
local function search_last_block(sid) return tonumber(redis.call('HGET', sx('qn'), sid) or '-1') end
local function search_fields(sid, uid)
  return {'s', sid, 'u', redis.sha1hex(uid), 'h', search_shard()}
end
-- The session's messages as words: every block's, in order.
local function search_body(sid)
  local parts = {}
  for b = 0, search_last_block(sid) do parts[#parts + 1] = redis.call('HGET', search_doc(sid, b), 'w') or '' end
  return table.concat(parts)
end
-- Store `lines` (each a message's words) as the session's blocks from block `b` on, after
-- `kept` (what block b already holds, left as it is); blocks past the last written go.
local function search_write(sid, uid, b, kept, lines)
  local last = search_last_block(sid)
  local block, size, changed = {kept}, #kept, false
  local function flush()
    if changed then
      local fields = search_fields(sid, uid)
      redis.call('HSET', search_doc(sid, b), 'w', table.concat(block), unpack(fields))
    end
  end
  for _, line in ipairs(lines) do
    if size > 0 and size + #line > SEARCH_BLOCK_BYTES then
      flush()
      b, block, size = b + 1, {}, 0
    end
    block[#block + 1], size, changed = line, size + #line, true
  end
  if size == 0 then b = b - 1 else flush() end
  for gone = b + 1, last do redis.call('DEL', search_doc(sid, gone)) end
  if b >= 0 then redis.call('HSET', sx('qn'), sid, b) else redis.call('HDEL', sx('qn'), sid) end
end
local function search_line(index, m)
  local ws = search_words(m)
  return '\n_' .. index .. ' ' .. (#ws > 0 and (table.concat(ws, ' ') .. ' ') or '')
end
-- Messages docs[from..] (JSON), stored at list index `start` on, join the session's last block.
search.add = function(sid, uid, start, docs, from)
  local lines = {}
  for i = from, #docs do
    local ok, m = pcall(cjson.decode, docs[i])
    lines[#lines + 1] = search_line(start + i - from, ok and type(m) == 'table' and m.content or '')
  end
  local b = math.max(search_last_block(sid), 0)
  search_write(sid, uid, b, redis.call('HGET', search_doc(sid, b), 'w') or '', lines)
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
  for b = 0, search_last_block(sid) do redis.call('DEL', search_doc(sid, b)) end
  redis.call('HDEL', sx('qn'), sid)
end
-- Messages leave the index (replaced by another version, or dropped by an edit): the one at list
-- index `from` when `only`, else every one from it on. The session's blocks are written afresh.
search.drop = function(sid, uid, from, only)
  local body, kept, at = search_body(sid), {}, 1
  while true do
    local s = sfind(body, '\n_', at, true)
    if not s then break end
    local e = sfind(body, '\n_', s + 2, true) or (#body + 1)
    local i = tonumber(ssub(body, s + 2, sfind(body, ' ', s, true) - 1))
    if not (i == from or (not only and i > from)) then kept[#kept + 1] = ssub(body, s, e - 1) end
    at = e
  end
  search_write(sid, uid, 0, '', kept)
end
-- The session leaves the index altogether (deleted, expired, or about to be indexed afresh).
search.forget = function(sid, uid)
  search.clear(sid, uid)
  redis.call('DEL', search_doc(sid, 't'))
end
