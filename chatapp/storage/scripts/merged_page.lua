--! shard_prelude
-- A single server only (a cluster refuses keys of several slots in one script; there the
-- listing merges the shards in Python instead). KEYS = the same index in every shard.
-- ARGV: now_ms, offset, count, '1' for a live index, then each shard's prefix in KEYS order.
-- Answers {total, summaries of the page}: one round trip for an operator-wide listing.
local now, offset, count, live = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local want, n = offset + count, #KEYS
-- Read each shard's newest entries a few at a time, as the merge needs them, instead of
-- `want` from every shard: about `want` + a batch per shard are read in all.
local batch = math.max(2, math.ceil(want / n) + 1)
local total = 0
local pages, at, read, done = {}, {}, {}, {}
local cur_id, cur_score = {}, {}
local function advance(i)
  if at[i] > #pages[i] and not done[i] then
    local page
    if live then
      page = redis.call('ZREVRANGEBYSCORE', KEYS[i], '+inf', '(' .. now, 'WITHSCORES', 'LIMIT', read[i], batch)
    else
      page = redis.call('ZREVRANGE', KEYS[i], read[i], read[i] + batch - 1, 'WITHSCORES')
    end
    pages[i], at[i], read[i], done[i] = page, 1, read[i] + #page / 2, #page < 2 * batch
  end
  local page = pages[i]
  cur_id[i] = page[at[i]]
  cur_score[i] = cur_id[i] and tonumber(page[at[i] + 1]) or nil
end
for i = 1, n do
  if live then
    total = total + redis.call('ZCOUNT', KEYS[i], '(' .. now, '+inf')
  else
    total = total + redis.call('ZCARD', KEYS[i])
  end
  pages[i], at[i], read[i], done[i] = {}, 1, 0, false
  advance(i)
end
-- Each shard's entries come newest first: take the newest head `want` times.
local page_shard, page_id, by_shard = {}, {}, {}
for taken = 1, want do
  local best, best_score, best_id = nil, nil, nil
  for i = 1, n do
    local score = cur_score[i]
    if score and (not best or score > best_score or (score == best_score and cur_id[i] > best_id)) then
      best, best_score, best_id = i, score, cur_id[i]
    end
  end
  if not best then break end
  at[best] = at[best] + 2
  advance(best)
  if taken > offset then
    local slot = #page_id + 1
    page_shard[slot], page_id[slot] = best, best_id
    local group = by_shard[best]
    if not group then group = {}; by_shard[best] = group end
    group[#group + 1] = slot
  end
end
-- The page's summaries, two commands per shard; a session gone behind the index's back
-- (removed by hand, evicted) is left out and forgotten.
local summaries = {}
for i, slots in pairs(by_shard) do
  local prefix = ARGV[4 + i]
  local ids, keys = {}, {}
  for j, slot in ipairs(slots) do ids[j] = page_id[slot]; keys[j] = prefix .. 's:' .. page_id[slot] end
  local found = redis.call('HMGET', prefix .. 'summaries', unpack(ids))
  local all_there = redis.call('EXISTS', unpack(keys)) == #keys
  for j, slot in ipairs(slots) do
    if found[j] and (all_there or redis.call('EXISTS', keys[j]) == 1) then
      summaries[slot] = found[j]
    else
      use_shard(prefix)
      forget(ids[j])
    end
  end
end
local page = {}
for slot = 1, #page_id do
  if summaries[slot] then page[#page + 1] = summaries[slot] else total = total - 1 end
end
return {total, page}
