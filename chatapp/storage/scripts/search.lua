--! shard_prelude
-- KEYS = {the index (one user's)}. ARGV: prefix, index name (after the prefix), now_ms,
-- offset, count, the words to find (lower case), how many entries to look at at most.
-- Answers {total, summaries of the page}: like page.lua, but only the sessions whose name,
-- title or description contains the words (ASCII letters in any case), newest first. It
-- reads the index in order, so it costs the user's sessions (a visitor's are bounded by its
-- quotas); `scan` bounds it for anyone else.
local key, now = P .. ARGV[2], ARGV[3]
local offset, count, words, scan = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local live = string.sub(ARGV[2], 1, 4) == 'live'
local function matches(summary)
  local ok, s = pcall(cjson.decode, summary)
  if not ok then return false end
  for _, field in ipairs({'display_name', 'title', 'description'}) do
    local text = s[field]
    if type(text) == 'string' and string.find(string.lower(text), words, 1, true) then return true end
  end
  return false
end
local BATCH = 200
local total, page, read = 0, {}, 0
while read < scan do
  local ids
  if live then
    ids = redis.call('ZREVRANGEBYSCORE', key, '+inf', '(' .. now, 'LIMIT', read, BATCH)
  else
    ids = redis.call('ZREVRANGE', key, read, read + BATCH - 1)
  end
  if #ids == 0 then break end
  read = read + #ids
  for _, summary in ipairs(summaries_of(ids)) do
    if summary and matches(summary) then
      total = total + 1
      if total > offset and #page < count then page[#page + 1] = summary end
    end
  end
  if #ids < BATCH then break end
end
return {total, page}
