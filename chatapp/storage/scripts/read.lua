--! session_prelude
-- ARGV: owner, limit ('' = all, '0' = none), before (index, '' = from the newest)
if not owned(ARGV[1]) then return false end
local fields = redis.call('HGETALL', KEYS[1])
if ARGV[2] == '0' then return {fields, 0, {}} end
local total = redis.call('LLEN', KEYS[2])
local stop = total - 1
if ARGV[3] ~= '' then stop = math.min(tonumber(ARGV[3]), total) - 1 end
local start = 0
if ARGV[2] ~= '' then start = math.max(stop - tonumber(ARGV[2]) + 1, 0) end
if stop < start then return {fields, start, {}} end
return {fields, start, redis.call('LRANGE', KEYS[2], start, stop)}
