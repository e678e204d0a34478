"""Fixtures for fault tests: private servers, started per test and always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import PostgresServer, RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    """One private cluster per module; a test that stops it must start it again."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
