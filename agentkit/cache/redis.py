"""``RedisCache``: the shared cache for many supervisor processes (extra ``agentkit[redis]``).

URLs: ``redis://[user:password@]host:port/db``, ``rediss://…`` (TLS) and
``unix:///path/to/redis.sock?db=0``. redis-py is imported only when a cache is built.

Error contract (what the engine sees):

* a transport failure, a server error or an operation that exceeds ``op_timeout`` raises
  :class:`~agentkit.errors.CacheError` (never a redis-py or OS exception), so the engine can
  count it (``Telemetry.record_cache_error``) and treat it as a miss;
* while the circuit breaker is open, ``get`` returns ``None`` and writes return at once
  without touching Redis: no error, no wait. Those refusals are counted in
  :attr:`RedisCache.stats` and :attr:`CircuitBreaker.rejected`.

Writes from concurrent callers are coalesced: every ``set``/``set_many`` issued in the same
event-loop tick (or within ``coalesce_window`` seconds) goes to Redis as one pipeline, and
calls arriving while a pipeline is in flight are sent together in the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agentkit._urlopts import opt_int, opt_optional_float, opt_str, split_options
from agentkit.cache._breaker import BreakerState, CircuitBreaker, StateListener
from agentkit.cache.base import BaseCache
from agentkit.errors import CacheError, ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisCache", "RedisCacheStats"]

_log = logging.getLogger("agentkit.cache.redis")


def _import_redis() -> Any:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError as exc:
        raise MissingDependencyError("redis", "redis") from exc
    return redis_asyncio


@dataclass
class RedisCacheStats:
    """Counters of one :class:`RedisCache` (read them; they only grow)."""

    hits: int = 0
    misses: int = 0
    errors: int = 0  #: operations that raised CacheError
    short_circuited: int = 0  #: operations refused at once because the circuit was open
    pipelines: int = 0  #: write round trips (a lone SET or a pipeline of coalesced SETs)
    commands: int = 0  #: SET commands sent


@dataclass(slots=True)
class _Pending:
    items: list[tuple[str, bytes]]
    ttl_ms: int | None
    future: asyncio.Future[None]


class RedisCache(BaseCache):
    """A cache on Redis with pooled connections, coalesced writes and a circuit breaker.

    Build it from a URL (``RedisCache.from_url("redis://localhost:6379/0")``, or
    ``cache="redis://…"`` on the Supervisor) or around an existing ``redis.asyncio.Redis``.

    Args:
        url: Redis URL; ignored when ``client`` is given.
        client: an existing ``redis.asyncio.Redis`` (bytes responses). Not closed by
            :meth:`aclose` unless ``own_client`` is True.
        own_client: close ``client`` in :meth:`aclose` (default: only when built from ``url``).
        key_prefix: prepended to every key (e.g. ``"prod:"``) to share one database.
        default_ttl: seconds a value lives when ``set`` gets no ``ttl``; ``None``: no expiry.
        op_timeout: seconds one operation (or one pipeline) may take before it fails with
            CacheError; also the socket timeout.
        connect_timeout: seconds to open a connection.
        max_connections: size of the connection pool.
        failure_threshold: consecutive failures that open the circuit.
        cooldown: seconds the circuit stays open before one operation probes Redis.
        coalesce_window: extra seconds to wait for more writes before sending a pipeline
            (0: coalesce only what arrives in the same event-loop tick).
        max_batch: most SET commands in one pipeline.
        max_batch_bytes: most value bytes in one pipeline (larger ``set_many`` calls are
            split; each pipeline gets its own ``op_timeout``).
        on_state_change: ``fn(name, old, new)`` called on every breaker state change, e.g.
            ``lambda n, o, s: telemetry.set_circuit_state(n, s.value)``.
        breaker: a :class:`CircuitBreaker` to use instead of building one.
    """

    url_schemes = ("redis", "rediss", "unix")

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | None = None,
        own_client: bool | None = None,
        key_prefix: str = "",
        default_ttl: float | None = 3600.0,
        op_timeout: float = 0.5,
        connect_timeout: float = 1.0,
        max_connections: int = 64,
        failure_threshold: int = 5,
        cooldown: float = 2.0,
        coalesce_window: float = 0.0,
        max_batch: int = 1000,
        max_batch_bytes: int = 1 << 20,
        on_state_change: StateListener | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__(default_ttl=default_ttl)
        if not op_timeout > 0 or not connect_timeout > 0:
            raise ConfigurationError("op_timeout and connect_timeout must be positive seconds")
        if not isinstance(key_prefix, str):
            raise ConfigurationError(f"key_prefix must be a str, got {key_prefix!r:.80}")
        if coalesce_window < 0:
            raise ConfigurationError("coalesce_window must be >= 0 seconds")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ConfigurationError(f"max_batch must be an int >= 1, got {max_batch!r}")
        self.key_prefix = key_prefix
        self.op_timeout = float(op_timeout)
        self.coalesce_window = float(coalesce_window)
        self.max_batch = max_batch
        self.max_batch_bytes = int(max_batch_bytes)
        self._inflight = 0  # direct (uncoalesced) writes on the wire
        self.stats = RedisCacheStats()
        self.breaker = breaker or CircuitBreaker(
            "redis", failure_threshold=failure_threshold, cooldown=cooldown
        )
        if on_state_change is not None:
            self.breaker.add_listener(on_state_change)
        if client is None:
            if not isinstance(url, str) or urlsplit(url).scheme.lower() not in self.url_schemes:
                raise ConfigurationError(
                    "RedisCache needs a redis://, rediss:// or unix:// URL or a client=, "
                    f"got {url!r:.100}"
                )
            redis_asyncio = _import_redis()
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import ConnectionError as RedisConnectionError

            # a blocking pool: a burst beyond max_connections waits (within op_timeout)
            # for a free connection instead of failing with "Too many connections"
            pool = redis_asyncio.BlockingConnectionPool.from_url(
                url,
                socket_timeout=self.op_timeout,
                socket_connect_timeout=float(connect_timeout),
                max_connections=max_connections,
                timeout=self.op_timeout,
                # one immediate retry on a dead pooled connection (server restarted);
                # timeouts are never retried: the op budget is the op budget
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                retry_on_timeout=False,
                decode_responses=False,
            )
            client = redis_asyncio.Redis.from_pool(pool)  # closes the pool on aclose()
            self._own_client = True if own_client is None else own_client
            self._where = _describe(url)
        else:
            self._own_client = bool(own_client)
            self._where = "client"
        self._client: Redis = client
        self._pending: deque[_Pending] = deque()
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisCache:
        """Build a cache for ``url``; ``options`` are the constructor's keyword arguments.

        Options may also be given in the URL query (``redis://h:6379/0?key_prefix=app:&
        op_timeout=0.2``); keyword arguments win. Other query parameters go to redis-py.

        Raises:
            ConfigurationError: not a Redis URL, or an option has an invalid value.
        """
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme.lower() not in cls.url_schemes:
            raise ConfigurationError(
                f"RedisCache needs a redis://, rediss:// or unix:// URL, got {url!r:.100}"
            )
        driver_url, merged = split_options(url, _URL_OPTIONS)
        merged.update(options)
        return cls(driver_url, **merged)

    @property
    def circuit_state(self) -> BreakerState:
        """The breaker's state: ``closed`` (normal), ``open`` (refusing), ``half_open``."""
        return self.breaker.state

    @property
    def client(self) -> Redis:
        """The underlying ``redis.asyncio.Redis`` client."""
        return self._client

    async def ping(self) -> bool:
        """True if Redis answers within ``op_timeout`` (ignores and does not move the breaker)."""
        try:
            async with asyncio.timeout(self.op_timeout):
                return bool(await self._client.ping())
        except Exception:
            return False

    # --- BaseCache hooks -----------------------------------------------------------------

    async def _get(self, key: str) -> bytes | None:
        if self._closed:
            raise CacheError("this RedisCache is closed; build a new one to read")
        if not self.breaker.allow():
            self.stats.short_circuited += 1
            self.stats.misses += 1
            return None
        try:
            async with asyncio.timeout(self.op_timeout):
                value = await self._client.get(self.key_prefix + key)
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except Exception as exc:
            raise self._failed("GET", exc) from exc
        self.breaker.record_success()
        if value is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        if not isinstance(value, bytes):
            value = value.encode() if isinstance(value, str) else bytes(value)
        return value

    async def _set_many(self, items: list[tuple[str, bytes]], ttl: float | None) -> None:
        if self._closed:
            raise CacheError("this RedisCache is closed; build a new one to write")
        if not self.breaker.allow():
            self.stats.short_circuited += 1
            return
        ttl_ms = None if ttl is None else max(1, round(ttl * 1000))
        if (
            len(items) == 1
            and self._inflight == 0
            and self._flusher is None
            and self.coalesce_window == 0
        ):
            # nothing on the wire to coalesce with: one SET now, without a task hop
            await self._set_direct(items[0], ttl_ms)
            return
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        chunk: list[tuple[str, bytes]] = []
        size = 0
        for item in items:
            if chunk and (len(chunk) >= self.max_batch or size >= self.max_batch_bytes):
                futures.append(self._enqueue(loop, chunk, ttl_ms))
                chunk, size = [], 0
            chunk.append(item)
            size += len(item[1])
        futures.append(self._enqueue(loop, chunk, ttl_ms))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_loop(), name="agentkit-redis-flush")
        if len(futures) == 1:
            await futures[0]
        else:
            await asyncio.gather(*futures)

    def _enqueue(
        self,
        loop: asyncio.AbstractEventLoop,
        items: list[tuple[str, bytes]],
        ttl_ms: int | None,
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append(_Pending(items, ttl_ms, future))
        return future

    async def _set_direct(self, item: tuple[str, bytes], ttl_ms: int | None) -> None:
        self._inflight += 1
        try:
            async with asyncio.timeout(self.op_timeout):
                await self._client.set(self.key_prefix + item[0], item[1], px=ttl_ms)
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except Exception as exc:
            raise self._failed("SET", exc) from exc
        finally:
            self._inflight -= 1
        self.breaker.record_success()
        self.stats.pipelines += 1
        self.stats.commands += 1

    async def _delete(self, key: str) -> bool:
        if self._closed:
            raise CacheError("this RedisCache is closed; build a new one to delete")
        if not self.breaker.allow():
            self.stats.short_circuited += 1
            return False
        try:
            async with asyncio.timeout(self.op_timeout):
                removed = await self._client.delete(self.key_prefix + key)
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except Exception as exc:
            raise self._failed("DEL", exc) from exc
        self.breaker.record_success()
        return bool(removed)

    async def _aclose(self) -> None:
        flusher = self._flusher
        if flusher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(flusher), self.op_timeout * 2)
            except (TimeoutError, asyncio.CancelledError):
                flusher.cancel()
            except Exception:  # the flusher never raises; be safe on close anyway
                _log.debug("redis flusher ended with an error on close", exc_info=True)
        if self._own_client:
            try:
                await self._client.aclose()
            except Exception:
                _log.debug("closing the redis client failed", exc_info=True)

    # --- internals -----------------------------------------------------------------------

    def _failed(self, op: str, exc: BaseException) -> CacheError:
        self.breaker.record_failure()
        self.stats.errors += 1
        if isinstance(exc, TimeoutError) and not str(exc):
            reason = f"timed out after {self.op_timeout:g}s"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return CacheError(
            f"redis {op} on {self._where} failed ({reason}); the engine treats this as a "
            f"cache miss; check that Redis is reachable and not overloaded"
        )

    async def _flush_loop(self) -> None:
        try:
            if self.coalesce_window > 0:
                await asyncio.sleep(self.coalesce_window)
            while self._pending:
                batch: list[_Pending] = []
                count = size = 0
                while self._pending and (
                    not batch or (count < self.max_batch and size < self.max_batch_bytes)
                ):
                    entry = self._pending.popleft()
                    batch.append(entry)
                    count += len(entry.items)
                    size += sum(len(v) for _, v in entry.items)
                await self._send(batch)
        finally:
            self._flusher = None
            if self._pending and not self._closed:
                self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _send(self, batch: list[_Pending]) -> None:
        live = [e for e in batch if not e.future.done()]
        if not live:
            self.breaker.release()  # a probe whose caller was cancelled must not stay pending
            return
        if self.breaker.state is BreakerState.OPEN:
            # opened while these waited: drop them like any write refused by an open circuit
            self.stats.short_circuited += len(live)
            _resolve(live, None)
            return
        prefix = self.key_prefix
        try:
            async with asyncio.timeout(self.op_timeout):
                if len(live) == 1 and len(live[0].items) == 1:
                    (key, value), ttl_ms = live[0].items[0], live[0].ttl_ms
                    await self._client.set(prefix + key, value, px=ttl_ms)
                    count = 1
                else:
                    pipe = self._client.pipeline(transaction=False)
                    count = 0
                    for entry in live:
                        for key, value in entry.items:
                            pipe.set(prefix + key, value, px=entry.ttl_ms)
                            count += 1
                    await pipe.execute()
        except asyncio.CancelledError:
            self.breaker.release()
            _resolve(live, CacheError("redis write cancelled because the cache is closing"))
            raise
        except Exception as exc:
            error = self._failed("SET pipeline", exc)
            _resolve(live, error)
            return
        self.breaker.record_success()
        self.stats.pipelines += 1
        self.stats.commands += count
        _resolve(live, None)

    def __repr__(self) -> str:
        return (
            f"RedisCache({self._where}, prefix={self.key_prefix!r}, "
            f"circuit={self.breaker.state.value})"
        )


def _resolve(entries: list[_Pending], error: BaseException | None) -> None:
    for entry in entries:
        fut = entry.future
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
            # mark retrieved: a caller that was cancelled meanwhile must not trigger
            # "exception was never retrieved"; a waiting caller still receives it
            fut.add_done_callback(_consume)


def _consume(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


_URL_OPTIONS: dict[str, Callable[[str, str], Any]] = {
    "key_prefix": opt_str,
    "default_ttl": opt_optional_float,
    "op_timeout": opt_optional_float,
    "connect_timeout": opt_optional_float,
    "cooldown": opt_optional_float,
    "coalesce_window": opt_optional_float,
    "max_connections": opt_int,
    "failure_threshold": opt_int,
    "max_batch": opt_int,
    "max_batch_bytes": opt_int,
}


def _describe(url: str) -> str:
    """The URL without credentials, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
