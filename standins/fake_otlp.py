"""A loopback OpenTelemetry collector: OTLP over HTTP, ``POST /v1/traces`` with a protobuf
``ExportTraceServiceRequest`` (gzip when the exporter compresses), as the real OTLP exporter sends it.
Spans are kept decoded: name, ids in hex, kind, attributes as plain values."""

from __future__ import annotations

import gzip

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)

from standins._loopback import LoopbackServer, Reply, Request


def _value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class FakeCollector(LoopbackServer):
    def __init__(self):
        super().__init__()
        self.spans: list[dict] = []

    @property
    def endpoint(self) -> str:
        return self.origin

    def handle(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != "/v1/traces":
            return Reply(404, "not found")
        if request.headers.get("content-type") != "application/x-protobuf":
            return Reply(415, "OTLP/HTTP wants application/x-protobuf")
        body = gzip.decompress(request.body) if request.headers.get("content-encoding") == "gzip" else request.body
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        with self.lock:
            for resource_spans in message.resource_spans:
                service = {a.key: _value(a.value) for a in resource_spans.resource.attributes}.get("service.name")
                for scope in resource_spans.scope_spans:
                    for s in scope.spans:
                        self.spans.append({
                            "name": s.name, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                            "parent_id": s.parent_span_id.hex() or None, "kind": s.kind, "service": service,
                            "attributes": {a.key: _value(a.value) for a in s.attributes},
                            "status": s.status.code})
        return Reply(200, ExportTraceServiceResponse().SerializeToString(),
                     {"Content-Type": "application/x-protobuf"})
