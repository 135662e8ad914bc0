-- KEYS = {active index, archived index, filter set...}; ARGV: now_ms. Drops filter-set
-- members that are neither live nor archived, returning how many.
local now, removed = tonumber(ARGV[1]), 0
for i = 3, #KEYS do
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    local live = tonumber(redis.call('ZSCORE', KEYS[1], sid) or '-1') > now
    if not live and not redis.call('ZSCORE', KEYS[2], sid) then
      removed = removed + redis.call('ZREM', KEYS[i], sid)
    end
  end
end
return removed
