"""chatops.logs: redaction, correlation ids, JSON lines."""

import io
import json
import logging

import pytest

from chatops import logs
from chatops.logs import JsonFormatter, TextFormatter, correlated, correlation_id, redact


@pytest.mark.parametrize("secret", [
    "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
    "xoxp-1-2-3-abcdef",
    "xapp-1-A0123-4567-abcdef0123",
    "sk-proj-Abc_def-1234567890",
    "sk-abcdefghijklmnop",
])
def test_tokens_are_masked(secret):
    out = redact(f"calling api with token={secret} now")
    assert secret not in out
    assert "[REDACTED]" in out
    assert out.startswith("calling api with token=") and out.endswith(" now")


@pytest.mark.parametrize("header", [
    "Authorization: Bearer eyJhbGciOi.payload.sig",
    "authorization: bearer abc123~+/=",
    "AUTHORIZATION: BEARER tok-en_1",
])
def test_bearer_headers_are_masked(header):
    out = redact(header)
    scheme = header.split(":")[1].split()[0]
    assert out.endswith(f"{scheme} [REDACTED]")
    assert header.split()[-1] not in out


def test_key_value_secrets_are_masked():
    assert redact("client_secret=abc&x=1") == "client_secret=[REDACTED]&x=1"
    assert redact('{"api_key": "k123", "other": 1}') == '{"api_key": "[REDACTED]", "other": 1}'
    assert redact("access_token: tok") == "access_token: [REDACTED]"


def test_ordinary_text_is_untouched():
    text = "user U123 asked about leave in C456 (doc hr/leave.md, score 0.83)"
    assert redact(text) == text


def test_words_containing_sk_dash_are_not_redacted():
    text = "ingested runbooks/disk-cleanup-guide.md and risk-assessment-2024.md"
    assert redact(text) == text


def test_correlated_sets_and_resets_the_id():
    assert correlation_id.get() is None
    with correlated("abc123") as cid:
        assert cid == "abc123"
        assert correlation_id.get() == "abc123"
        with correlated(None) as inner:
            assert inner and inner != "abc123"
            assert correlation_id.get() == inner
        assert correlation_id.get() == "abc123"
    assert correlation_id.get() is None


@pytest.fixture
def json_log(monkeypatch):
    """logs.setup() into a buffer; restore the root logger afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.setup(level="DEBUG", fmt="json", stream=stream)
    try:
        yield stream
    finally:
        for h in list(root.handlers):
            if h not in saved_handlers:
                root.removeHandler(h)
        root.setLevel(saved_level)


def lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_the_correlation_id(json_log):
    log = logging.getLogger("chatops.test")
    log.info("before")
    with correlated("cid-42"):
        log.info("inside %s", "block", extra={"channel": "C1", "user": "U1"})
    log.info("after")
    before, inside, after = lines(json_log)
    assert "correlation_id" not in before and "correlation_id" not in after
    assert inside["correlation_id"] == "cid-42"
    assert inside["msg"] == "inside block"
    assert inside["level"] == "info"
    assert inside["logger"] == "chatops.test"
    assert inside["channel"] == "C1" and inside["user"] == "U1"
    assert inside["ts"].endswith("Z")


def test_json_lines_are_redacted(json_log):
    log = logging.getLogger("chatops.test")
    with correlated("cid-7"):
        log.warning("token xoxb-111-222-abc", extra={"auth": "Bearer abc.def"})
    (line,) = lines(json_log)
    assert "xoxb-111-222-abc" not in json_log.getvalue()
    assert "abc.def" not in json_log.getvalue()
    assert line["msg"] == "token [REDACTED]"
    assert line["correlation_id"] == "cid-7"


def test_json_exception_is_included(json_log):
    log = logging.getLogger("chatops.test")
    try:
        raise ValueError("boom sk-abcdefghijkl")
    except ValueError:
        log.exception("failed")
    (line,) = lines(json_log)
    assert "ValueError" in line["exc"]
    assert "sk-abcdefghijkl" not in line["exc"]


def test_setup_replaces_its_own_handler_only(json_log):
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_chatops", False)]
    logs.setup(level="INFO", fmt="text", stream=io.StringIO())
    ours_after = [h for h in root.handlers if getattr(h, "_chatops", False)]
    assert len(ours) == len(ours_after) == 1
    assert isinstance(ours_after[0].formatter, TextFormatter)
    assert root.level == logging.INFO


def test_formatters_directly():
    record = logging.makeLogRecord({"name": "x", "levelname": "ERROR", "levelno": 40,
                                    "msg": "hello %s", "args": ("xapp-1-abc",),
                                    "correlation_id": "cid-9"})
    payload = json.loads(JsonFormatter().format(record))
    assert payload["correlation_id"] == "cid-9"
    assert payload["msg"] == "hello [REDACTED]"
    assert TextFormatter().format(record) == "error   x: hello [REDACTED] [cid=cid-9]"
