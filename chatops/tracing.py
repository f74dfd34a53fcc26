"""OpenTelemetry traces, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (OTLP over HTTP/protobuf).

One trace per question: the web process starts it when Slack's event arrives and puts the
W3C ``traceparent`` into the task's payload; the worker continues it, with a span per stage
(identity, audience, cache, retrieval, generation, the Slack post) and the model call as a
GenAI client span named by the semantic conventions (``chat <model>``, ``gen_ai.*``
attributes). Message content is not recorded unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``. The logs' correlation id is the
trace id, so a log line leads to its trace and back.

Without an endpoint the OpenTelemetry API's no-op tracer is used: spans cost a function call.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_state: dict[str, Any] = {"provider": None, "endpoint": None, "capture_content": False}

__all__ = ["SpanKind", "capture_content", "carrier", "continued", "setup", "span", "trace_id"]


def setup(endpoint: str | None, *, service_name: str = "chatops", capture: bool = False) -> object | None:
    """Export spans to ``endpoint`` (its ``/v1/traces``) from this process; once per process (a
    second call with the same endpoint is a no-op). Returns the tracer provider, or None when
    tracing is off."""
    _state["capture_content"] = bool(capture)
    if not endpoint:
        return None
    if _state["provider"] is not None:
        if _state["endpoint"] != endpoint:
            log.warning("tracing already exports elsewhere in this process; keeping it",
                        extra={"endpoint": _state["endpoint"]})
        provider_set: object = _state["provider"]
        return provider_set
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    trace.set_tracer_provider(provider)
    _state.update(provider=provider, endpoint=endpoint)
    log.info("exporting traces", extra={"endpoint": endpoint})
    return provider


def capture_content() -> bool:
    return bool(_state["capture_content"])


def _tracer() -> trace.Tracer:
    return trace.get_tracer("chatops")


_OFF = contextlib.nullcontext(trace.INVALID_SPAN)


def _on() -> bool:
    """Spans are made when this process exports them, or another part of it set up a provider."""
    return _state["provider"] is not None or not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL,
         attributes: dict[str, Any] | None = None) -> contextlib.AbstractContextManager[Span]:
    """A span around a block; an exception marks it failed (and goes on). Tracing off: nothing at
    all (a shared no-op context: the acknowledgement path pays a few hundred nanoseconds)."""
    if not _on():
        return _OFF
    return _tracer().start_as_current_span(name, kind=kind, attributes=attributes or {},
                                           record_exception=True, set_status_on_exception=True)


def trace_id() -> str | None:
    """The current trace's id (32 hex digits), or None when nothing is traced."""
    if not _on():
        return None
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``), to put into a task's payload."""
    headers: dict[str, str] = {}
    if _on():
        _PROPAGATOR.inject(headers)
    return headers


@contextlib.contextmanager
def continued(headers: dict[str, Any] | None, name: str, *, attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """A span that continues the trace the headers carry (a worker taking a task)."""
    parent = _PROPAGATOR.extract(headers or {}) if isinstance(headers, dict) else None
    token = otel_context.attach(parent) if parent is not None else None
    try:
        with span(name, kind=SpanKind.CONSUMER, attributes=attributes) as current:
            yield current
    finally:
        if token is not None:
            otel_context.detach(token)


def failed(current: Span, reason: str) -> None:
    current.set_status(Status(StatusCode.ERROR, reason))
