"""Fixtures of the telemetry tests: in-memory SDK, and a loopback OTLP/HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otel_helpers import Otel, make_otel
from otlp_receiver import OtlpReceiver


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = make_otel()
    yield o
    o.shutdown()


@pytest.fixture
def otel_content() -> Iterator[Otel]:
    o = make_otel(record_content=True)
    yield o
    o.shutdown()


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()
