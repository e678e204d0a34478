"""Caches: the protocol and the in-tree backends (memory built in, redis as an extra)."""

from agentkit.cache.base import BaseCache, Cache

__all__ = ["BaseCache", "Cache"]
