"""Everything the engine asks of Redis, in one place.

- `connect`: every connection, built from `REDIS_URL` (redis://, rediss:// with the ssl_* query
  options, user and password for an ACL user, unix:// sockets): redis-py's sync and asyncio
  clients, and the multiplexed client of the API's hot path.
- `multiplexed`: that client: one connection per process carrying every request at once.
- `counters`: the counters kept in Redis (the rate limiter's bucket, the active-task quota, the
  token endpoint's windows, expiring slots, request counts), each a Lua script or a pipeline.
"""
