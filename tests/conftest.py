from tests.redis_server import redis_cache_url, redis_server, redis_url  # noqa: F401
