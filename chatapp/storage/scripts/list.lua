-- KEYS = {state index, other state index, filter set...};
-- ARGV: now_ms, offset, limit, '1' when the state index is the (expiring) active one.
local now, offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] == '1' then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
if #KEYS == 2 then
  return {redis.call('ZCARD', KEYS[1]),
          redis.call('ZREVRANGE', KEYS[1], offset, offset + limit - 1, 'WITHSCORES')}
end
-- Filtered: walk the (small) first filter set, keep members alive in the state index.
local hits = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local score = redis.call('ZSCORE', KEYS[1], sid)
  if score and tonumber(score) > (ARGV[4] == '1' and now or -1) then
    if not KEYS[4] or redis.call('ZSCORE', KEYS[4], sid) then
      table.insert(hits, {sid, tonumber(score)})
    end
  elseif not score and not redis.call('ZSCORE', KEYS[2], sid) then
    redis.call('ZREM', KEYS[3], sid)  -- neither live nor archived: forget it lazily
  end
end
table.sort(hits, function(a, b)
  if a[2] == b[2] then return a[1] > b[1] end
  return a[2] > b[2]
end)
local page = {}
for i = offset + 1, math.min(offset + limit, #hits) do
  table.insert(page, hits[i][1])
  table.insert(page, tostring(hits[i][2]))
end
return {#hits, page}
