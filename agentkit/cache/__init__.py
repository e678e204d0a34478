"""Caches: the protocol and the in-tree backends (memory built in, redis as an extra)."""

from agentkit.cache.base import BaseCache, Cache
from agentkit.cache.memory import MemoryCache
from agentkit.cache.redis import RedisCache

__all__ = ["BaseCache", "Cache", "MemoryCache", "RedisCache"]
