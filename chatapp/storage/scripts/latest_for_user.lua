-- KEYS = {user set, active index, archived index}; ARGV: now_ms.
-- The user's most recently active session: live ones first, then archived ones.
local now = tonumber(ARGV[1])
local best, best_score = false, -1
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(members) do
  local score = tonumber(redis.call('ZSCORE', KEYS[2], sid) or '-1')
  if score > now and score > best_score then best, best_score = sid, score end
end
if best then return best end
for _, sid in ipairs(members) do
  local score = tonumber(redis.call('ZSCORE', KEYS[3], sid) or '-1')
  if score > best_score then best, best_score = sid, score end
end
return best
