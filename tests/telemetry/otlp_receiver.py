"""A real OTLP/HTTP receiver on loopback: decodes protobuf export requests into memory."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def any_value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


class OtlpReceiver:
    """``ThreadingHTTPServer`` on 127.0.0.1 serving ``/v1/traces`` and ``/v1/metrics``."""

    def __init__(self) -> None:
        self.trace_requests: list[ExportTraceServiceRequest] = []
        self.metric_requests: list[ExportMetricsServiceRequest] = []
        self.raw_bodies: list[bytes] = []
        self.content_types: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.content_types.add(self.headers.get("Content-Type", ""))
                if self.path == "/v1/traces":
                    req: Any = ExportTraceServiceRequest()
                    req.ParseFromString(body)
                    reply = ExportTraceServiceResponse().SerializeToString()
                    with receiver._lock:
                        receiver.trace_requests.append(req)
                        receiver.raw_bodies.append(body)
                elif self.path == "/v1/metrics":
                    req = ExportMetricsServiceRequest()
                    req.ParseFromString(body)
                    reply = ExportMetricsServiceResponse().SerializeToString()
                    with receiver._lock:
                        receiver.metric_requests.append(req)
                        receiver.raw_bodies.append(body)
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def spans(self) -> Iterator[tuple[dict[str, Any], str, Any]]:
        """(resource attributes, scope name, span) for every received span."""
        with self._lock:
            reqs = list(self.trace_requests)
        for req in reqs:
            for rs in req.resource_spans:
                res = attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        yield res, ss.scope.name, span

    def metrics(self) -> Iterator[tuple[dict[str, Any], str, Any]]:
        """(resource attributes, scope name, metric) for every received metric."""
        with self._lock:
            reqs = list(self.metric_requests)
        for req in reqs:
            for rm in req.resource_metrics:
                res = attrs(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        yield res, sm.scope.name, m

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("the OTLP receiver did not get the expected data in time")
            time.sleep(0.02)
