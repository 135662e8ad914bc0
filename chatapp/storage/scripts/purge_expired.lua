-- KEYS = {active index, archived index}; ARGV: now_ms. Drops expired entries of the
-- active index, returning how many.
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
