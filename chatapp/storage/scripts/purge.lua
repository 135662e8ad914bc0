--! shard_prelude
-- KEYS = {the shard's live index}. ARGV: prefix, now_ms, batch. Drops up to `batch`
-- expired sessions' index entries and summaries; answers how many.
return prune(ARGV[2], tonumber(ARGV[3]))
