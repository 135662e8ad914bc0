--! shard_prelude
-- KEYS = {the index}. ARGV: prefix, index name (after the prefix), now_ms, offset, count,
-- '1' to answer summaries too. Answers {total, ids with scores, summaries}: a page of one
-- index, newest first; a live index counts only entries not yet past their expiry.
local key, now = P .. ARGV[2], ARGV[3]
local offset, count = tonumber(ARGV[4]), tonumber(ARGV[5])
local live = string.sub(ARGV[2], 1, 4) == 'live'
local total, page = 0, {}
if live then total = redis.call('ZCOUNT', key, '(' .. now, '+inf') else total = redis.call('ZCARD', key) end
if count > 0 and live then
  page = redis.call('ZREVRANGEBYSCORE', key, '+inf', '(' .. now, 'WITHSCORES', 'LIMIT', offset, count)
elseif count > 0 then
  page = redis.call('ZREVRANGE', key, offset, offset + count - 1, 'WITHSCORES')
end
local summaries = {}
if ARGV[6] == '1' and #page > 0 then
  local ids = {}
  for i = 1, #page, 2 do table.insert(ids, page[i]) end
  summaries = summaries_of(ids)
end
return {total, page, summaries}
