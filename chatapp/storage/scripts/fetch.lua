--! shard_prelude
-- KEYS = {the shard's summaries}. ARGV: prefix, session id... Answers their summaries in
-- order (false for a session that is gone): the second step of a listing merged over shards.
return summaries_of({unpack(ARGV, 2)})
