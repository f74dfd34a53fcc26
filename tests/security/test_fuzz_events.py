"""Property-based fuzzing of ``POST /slack/events``: bodies, content types and signature headers.

The real web app (FastAPI + Bolt) on a loopback port, built once for the module (``serve_web``
from the conftest); what it enqueued is cleared before every generated request. For every
request: an HTTP answer (a dropped connection fails the test), 200 or 4xx and never 5xx,
nothing enqueued that Slack did not really ask for, and the process still answers ``/livez``
afterwards.

The JSON, form and unsigned properties (whose bodies reach Bolt) run twice: with fresh random
examples (``..._survive(s)``) and derandomized (``..._never_5xx``, ``..._always_401``: the same
examples every run, a stable regression set). The arbitrary-bytes and signature-header
properties run with random examples only.

``test_known_500s``: the minimal requests this fuzzing first found answered 500 (a body that
passed the checks in ``bot/web.py`` but whose Slack fields had the wrong JSON type made Bolt
raise while building its request, before the signature was verified, or made a listener or
middleware raise).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

import pytest
import requests
from hypothesis import HealthCheck, Phase, assume, event, given, settings
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st

from bot.web import MAX_JSON_DEPTH, json_depth
from tests.security.conftest import APP_ID, BOT, SECRET, TEAM, Web, redis_or_skip, serve_web
from standins.fake_slack import FakeSlack, event_body, sign

pytestmark = pytest.mark.redis

FUZZ = settings(deadline=None, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much, HealthCheck.large_base_example])
# The derandomized variants: the same examples every run, no shrinking (a failure there is a
# regression; the random variants shrink theirs).
STRICT = settings(FUZZ, derandomize=True, phases=[Phase.explicit, Phase.generate])


# -- the server, once per module -----------------------------------------------------------

class ServerErrors(logging.Filter):
    """Takes uvicorn's "Exception in ASGI application" records before any handler formats them.

    uvicorn logs that traceback in the server thread *after* the 500 has been sent, while pytest
    may be formatting a failure in the main thread; Python 3.11's traceback formatting calls
    ``ast.parse``, whose recursion bookkeeping is not thread-safe ("SystemError: AST constructor
    recursion depth mismatch", a pytest INTERNALERROR). pytest's log capture handlers are attached
    to ``uvicorn.error`` itself, so a logger filter (run before every handler) keeps the records,
    unformatted, for the main thread to inspect.
    """

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info:
            return True
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()
        return False

    def wait_beyond(self, count: int, timeout: float = 5.0) -> logging.LogRecord | None:
        with self.changed:
            self.changed.wait_for(lambda: len(self.records) > count, timeout=timeout)
            return self.records[-1] if len(self.records) > count else None


@dataclass
class FuzzWeb(Web):
    errors: ServerErrors | None = None


@pytest.fixture(scope="module")
def server():
    client = redis_or_skip()
    slack = FakeSlack(users={}, channels={}, bot_user_id=BOT, team_id=TEAM).start()
    enqueued: list = []
    prefix = f"chatops-fuzz-{uuid.uuid4().hex[:8]}"
    env = {"SLACK_BOT_TOKEN": "xoxb-security", "SLACK_SIGNING_SECRET": SECRET, "SLACK_APP_ID": APP_ID,
           "CHATOPS_KEY_PREFIX": prefix, "REDIS_URL": "redis://127.0.0.1:6379/0", "SLACK_API_URL": slack.url}
    url, uv = serve_web(slack, env, enqueued)
    errors = ServerErrors()
    uv_log = logging.getLogger("uvicorn.error")
    uv_log.addFilter(errors)
    try:
        yield FuzzWeb(url=url, slack=slack, prefix=prefix, enqueued=enqueued, errors=errors)
    finally:
        uv.should_exit = True
        slack.stop()
        uv_log.removeFilter(errors)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def send(web: FuzzWeb, body: bytes, *, content_type: str | None = "application/json", signed: bool = True,
         headers: dict | None = None) -> requests.Response:
    """One request with a clean ``enqueued``; a dropped connection is a failure, not an error.

    After a Starlette 500 this waits for uvicorn's record of it, kept on ``resp.server_error``.
    """
    web.enqueued.clear()
    seen = len(web.errors.records)
    try:
        resp = web.post(body, content_type=content_type, signed=signed, headers=headers)
    except requests.exceptions.InvalidHeader:
        assume(False)       # requests itself refuses to send this header value
        raise
    except requests.RequestException as exc:
        raise AssertionError(f"no HTTP answer ({exc!r}) for {body[:200]!r}") from exc
    resp.server_error = None
    if currently_in_test_context():         # shown by --hypothesis-show-statistics
        event(f"HTTP {resp.status_code}")
        if web.enqueued:
            event("enqueued: " + ",".join(kind for kind, _ in web.enqueued))
    if resp.status_code == 500 and resp.text == "Internal Server Error":
        record = web.errors.wait_beyond(seen)
        resp.server_error = record.exc_info[1] if record and record.exc_info else None
    return resp


def frames(exc: BaseException | None) -> list[str]:
    """``file:function`` of every frame ``exc`` went through (no formatting, see ServerErrors)."""
    out, tb = [], exc.__traceback__ if exc else None
    while tb is not None:
        out.append(f"{tb.tb_frame.f_code.co_filename}:{tb.tb_frame.f_code.co_name}")
        tb = tb.tb_next
    return out


def assert_alive(web: Web) -> None:
    try:
        resp = requests.get(f"{web.url}/livez", timeout=5)
    except requests.RequestException as exc:
        raise AssertionError(f"the server stopped answering: {exc!r}") from exc
    assert resp.status_code == 200 and resp.text == "ok"


def assert_4xx(resp: requests.Response, what) -> None:
    assert 400 <= resp.status_code < 500, f"{resp.status_code} {resp.text[:200]!r} for {what!r}"


def assert_answered(resp: requests.Response, what) -> None:
    """200 or 4xx, never a traceback in the answer; a 5xx is reported with the server's exception."""
    assert "Traceback" not in resp.text
    assert resp.status_code == 200 or 400 <= resp.status_code < 500, \
        (f"{resp.status_code} {resp.text[:200]!r} ({resp.server_error!r} via {frames(resp.server_error)[-3:]}) "
         f"for {what!r}")


def slack_shaped(content_type: str | None, body: bytes) -> bool:
    """What Slack sends (and so what may pass the checks before Bolt): a UTF-8 JSON object, or
    UTF-8 form data whose ``payload`` (if any) is a JSON object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    kind = (content_type or "").split(";", 1)[0].strip().lower()

    def json_object(s: str) -> bool:
        try:
            return isinstance(json.loads(s), dict)
        except (ValueError, RecursionError):
            return False

    if kind == "application/json":
        return json_object(text)
    if kind == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=1000)
        except ValueError:
            return False
        return "payload" not in form or json_object(form["payload"][0])
    return False


# -- strategies ----------------------------------------------------------------------------

SLACK_KEYS = ["type", "event", "team", "team_id", "api_app_id", "user", "user_id", "channel", "channel_id",
              "enterprise", "enterprise_id", "authorizations", "response_url", "response_urls", "view", "actions",
              "payload", "token", "event_id", "is_ext_shared_channel", "is_enterprise_install", "ts",
              "thread_ts", "text", "channel_type", "subtype", "bot_id", "message", "previous_message", "item",
              "assistant_thread", "function_execution_id", "function_data", "challenge", "ssl_check", "command"]
SLACK_WORDS = ["event_callback", "app_mention", "message", "block_actions", "view_submission",
               "url_verification", "A123", "A_OTHER", "T123", "T_OTHER", "E1", "U1", "UBOT", "C1", "D1", "im",
               "channel", "1700000000.000100", "<@UBOT> hi", "answer_in_dm", "proposal_approve", "1", "true"]
OUR_ACTIONS = ["answer_in_dm", "proposal_approve", "proposal_reject", "proposal_reject_modal"]

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20)
           | st.sampled_from(SLACK_WORDS))
keys = st.sampled_from(SLACK_KEYS) | st.text(max_size=12)
def _containers(kids):
    return st.one_of(st.lists(kids, max_size=4), st.dictionaries(keys, kids, max_size=5))


json_values = st.recursive(scalars, _containers, max_leaves=25)
json_objects = st.dictionaries(keys, json_values, max_size=8)


def word_or(strategy):
    return st.sampled_from(SLACK_WORDS) | strategy


def right_or(value, wrong):
    """``value`` (a constant or a strategy) half of the time, else something from ``wrong``: so some
    envelopes are right in every field and reach the listeners."""
    right = value if isinstance(value, st.SearchStrategy) else st.just(value)
    return st.booleans().flatmap(lambda is_right: right if is_right else wrong)


# A fresh ts (the listener de-duplicates on channel:ts, in Redis, for the whole module).
fresh_ts = st.integers(10**15, 2 * 10**15).map(lambda us: f"{us // 10**6}.{us % 10**6:06d}")


slack_events = st.fixed_dictionaries(
    {"type": right_or("app_mention", st.just("message") | scalars),
     "user": right_or("U1", word_or(json_values)), "channel": right_or("C1", word_or(json_values)),
     "ts": right_or(fresh_ts, scalars)},
    optional={"text": word_or(json_values), "thread_ts": scalars, "channel_type": st.sampled_from(["im", "channel"])
              | scalars, "subtype": scalars, "bot_id": scalars, "team": word_or(json_values)})

# Event envelopes: right or wrong in every field, so some reach the listeners.
envelopes = st.fixed_dictionaries(
    {"type": right_or("event_callback", scalars),
     "api_app_id": right_or(APP_ID, st.just("A_OTHER") | scalars),
     "team_id": right_or(TEAM, st.just("T_OTHER") | scalars),
     "event": right_or({}, json_values).flatmap(lambda v: slack_events if v == {} else st.just(v))},
    optional={"authorizations": st.lists(st.fixed_dictionaries({"team_id": word_or(scalars)}) | json_values,
                                         max_size=2) | scalars,
              "event_id": scalars, "is_ext_shared_channel": st.booleans() | scalars,
              "enterprise_id": scalars, "team": json_values, "user": json_values, "channel": json_values})


@st.composite
def near_envelopes(draw) -> dict:
    """A right ``app_mention`` / ``message`` envelope with 0-3 fields replaced or removed."""
    event = {"type": draw(st.sampled_from(["app_mention", "message"])), "user": "U1", "channel": "C1",
             "ts": draw(fresh_ts), "text": draw(st.sampled_from([f"<@{BOT}> hi", "hi"]) | st.text(max_size=30))}
    if draw(st.booleans()):
        event["channel_type"] = draw(st.sampled_from(["im", "channel", "group"]))
    body = json.loads(event_body(event, event_id=f"Ev{draw(st.integers(0, 10**9))}"))
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()) and isinstance(body.get("event"), dict):
            target, likely = body["event"], ["type", "user", "channel", "ts", "bot_id", "subtype"]
        else:   # mostly the fields that say whose event it is
            target, likely = body, ["api_app_id", "team_id", "team", "authorizations", "type", "event"]
        key = draw(st.sampled_from(likely) | st.sampled_from(sorted(target) or ["type"]) | keys)
        if draw(st.integers(0, 3)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(word_or(json_values))
    return body


MISSING = object()


def identity(right, other):
    return st.sampled_from([right, right, other, MISSING]) | scalars | json_values


@st.composite
def whose_envelopes(draw) -> dict:
    """A right mention whose identity fields (app, workspace, ...) are each right, another's, missing
    or junk: only the right app and workspace may get a question enqueued."""
    event = {"type": "app_mention", "user": "U1", "channel": "C1", "ts": draw(fresh_ts), "text": f"<@{BOT}> hi"}
    body = json.loads(event_body(event, event_id=f"Ev{draw(st.integers(0, 10**9))}"))
    for key, right, other in [("api_app_id", APP_ID, "A_OTHER"), ("team_id", TEAM, "T_OTHER"),
                              ("authorizations", body["authorizations"], [{"team_id": "T_OTHER"}]),
                              ("team", TEAM, {"id": "T_OTHER"}), ("enterprise_id", None, "E_OTHER"),
                              ("type", "event_callback", "app_rate_limited")]:
        value = draw(identity(right, other)) if draw(st.booleans()) else body.get(key, MISSING)
        if value is MISSING:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def nested(depth: int, kind: str, leaf) -> str:
    leaf_text = json.dumps(leaf)
    if kind == "list":
        return "[" * depth + leaf_text + "]" * depth
    if kind == "event":
        return '{"event":' * depth + leaf_text + "}" * depth
    return '{"a":[' * depth + leaf_text + "]}" * depth


deep_json = st.builds(nested, st.integers(1, 5000), st.sampled_from(["list", "event", "mixed"]), scalars)


def as_text(value) -> str:
    return json.dumps(value)


# A JSON body as text, and the value it parses to (None when it does not).
json_bodies = st.one_of(json_values.map(as_text), json_objects.map(as_text), envelopes.map(as_text),
                        near_envelopes().map(as_text), whose_envelopes().map(as_text), deep_json,
                        st.builds(lambda n: '{"a": ' + "9" * n + "}", st.integers(4000, 6000)))


def parsed(text: str):
    """The body as the web app accepts it: JSON, nesting at most MAX_JSON_DEPTH levels (a fixed
    limit, so the answer never depends on how deep the stack of the parsing thread is)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return None if json_depth(value) > MAX_JSON_DEPTH else value


def teams_of(body: dict) -> list:
    """Every place a team id may sit (an over-approximation of Bolt's own lookup)."""
    out = [body.get("team_id"), body.get("team")]
    if isinstance(body.get("team"), dict):
        out.append(body["team"].get("id"))
    auths = body.get("authorizations")
    if isinstance(auths, list) and auths and isinstance(auths[0], dict):
        out.append(auths[0].get("team_id"))
    if isinstance(body.get("event"), dict):
        out.append(body["event"].get("team"))
    return out


def may_enqueue(body) -> bool:
    """Only a real event for this app and workspace may become a question."""
    return (isinstance(body, dict) and body.get("type") == "event_callback" and body.get("api_app_id") == APP_ID
            and isinstance(body.get("event"), dict) and body["event"].get("type") in ("app_mention", "message")
            and TEAM in teams_of(body))


def assert_enqueued_only_if_ours(web: Web, body) -> None:
    if not web.enqueued:
        return
    assert may_enqueue(body), f"enqueued {web.enqueued!r} for {body!r}"
    assert len(web.enqueued) == 1, web.enqueued
    kind, payload = web.enqueued[0]
    event = body["event"]
    assert kind == "question"
    assert (payload["channel"], payload["user"], payload["ts"]) == (event.get("channel"), event.get("user"),
                                                                    event.get("ts"))


# Interactivity payloads. Either for this app and workspace with action ids we do not handle, or
# with our action ids but for another app or workspace: none of them may be enqueued.
def actions_with(ids):
    return st.lists(st.fixed_dictionaries({"action_id": ids}, optional={"value": scalars, "action_ts": scalars,
                                                                          "type": scalars}), max_size=2)


foreign_ids = st.text(max_size=20).filter(lambda s: s not in OUR_ACTIONS)
interactivity = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["block_actions", "view_submission", "shortcut"]) | scalars,
         "api_app_id": st.just(APP_ID), "team": st.just({"id": TEAM}),
         "actions": actions_with(foreign_ids) | json_values},
        optional={"user": json_values, "channel": json_values, "view": st.fixed_dictionaries(
            {"callback_id": foreign_ids}, optional={"private_metadata": scalars, "state": json_values})}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["block_actions", "view_submission"]) | scalars,
         "api_app_id": st.sampled_from(["A_OTHER", None]) | st.text(max_size=8).filter(lambda s: s != APP_ID),
         "actions": actions_with(st.sampled_from(OUR_ACTIONS)),
         "view": st.fixed_dictionaries({"callback_id": st.just("proposal_reject_modal")})},
        optional={"team": json_values, "user": json_values, "channel": json_values,
                  "response_urls": json_values, "enterprise": json_values}),
)

payload_values = st.one_of(st.text(), json_values.map(as_text), json_objects.map(as_text),
                           interactivity.map(as_text), interactivity.map(as_text),
                           st.integers(1, 60_000).map(lambda n: "[" * n + "]" * n))
form_keys = st.sampled_from(["payload", "command", "text", "ssl_check", "token", "team_id", "user_id",
                             "authorizations", "response_urls", "team", "channel"]) | st.text(max_size=10)


@st.composite
def form_bodies(draw) -> bytes:
    pairs = [("payload", draw(payload_values))]
    pairs += draw(st.lists(st.tuples(form_keys, st.text(max_size=20) | payload_values), max_size=3))
    if draw(st.booleans()):
        pairs = draw(st.permutations(pairs))
    if draw(st.integers(0, 4)) == 0:    # raw, the way a careless client (or an attacker) writes it
        return "&".join(f"{k}={v}" for k, v in pairs).encode()
    return urlencode(pairs).encode()


FORM_TYPES = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "Application/JSON", *FORM_TYPES,
                 "text/plain", "multipart/form-data; boundary=x", "application/xml", "", "*/*", None]


# -- 1. arbitrary bytes ----------------------------------------------------------------------

@settings(FUZZ, max_examples=60)
@given(body=st.binary(max_size=300) | st.text(max_size=200).map(str.encode)
       | st.sampled_from([b"payload=", b"{", b"[", b"{\"", b"\xef\xbb\xbf{}"]).flatmap(
           lambda prefix: st.binary(max_size=60).map(lambda rest: prefix + rest)),
       content_type=st.sampled_from(CONTENT_TYPES))
def test_arbitrary_signed_bytes_are_refused(server, body, content_type):
    resp = send(server, body, content_type=content_type)
    if slack_shaped(content_type, body):
        # e.g. b"" as form data or b"{}": passes the checks; Bolt drops it (not for this app).
        assert_answered(resp, (content_type, body))
    else:
        assert_4xx(resp, (content_type, body))
    assert server.enqueued == []
    assert_alive(server)


# -- 2. structured but wrong JSON --------------------------------------------------------------

def json_property(web: Web, text: str, content_type: str, pad: str) -> None:
    body = (pad + text).encode()
    value = parsed(text)
    resp = send(web, body, content_type=content_type)
    if not isinstance(value, dict):
        assert_4xx(resp, body[:300])             # not a JSON object (or too deep, or too big a number)
    else:
        assert_answered(resp, value)
    assert_enqueued_only_if_ours(web, value)
    assert_alive(web)


JSON_ARGS = dict(text=json_bodies,
                 content_type=st.sampled_from(["application/json", "application/json; charset=utf-8"]),
                 pad=st.sampled_from(["", " ", "\n"]))


@settings(FUZZ, max_examples=60)
@given(**JSON_ARGS)
def test_signed_json_of_any_shape_survives(server, text, content_type, pad):
    json_property(server, text, content_type, pad)


@settings(STRICT, max_examples=60)
@given(**JSON_ARGS)
def test_signed_json_of_any_shape_is_never_5xx(server, text, content_type, pad):
    json_property(server, text, content_type, pad)


# -- 3. form bodies ----------------------------------------------------------------------------

def form_property(web: Web, body: bytes, content_type: str) -> None:
    resp = send(web, body, content_type=content_type)
    if slack_shaped(content_type, body):
        assert_answered(resp, body[:300])
    else:
        assert_4xx(resp, body[:300])
    assert web.enqueued == []
    assert_alive(web)


@settings(FUZZ, max_examples=50)
@given(body=form_bodies(), content_type=st.sampled_from(FORM_TYPES))
def test_signed_form_payloads_of_any_shape_survive(server, body, content_type):
    form_property(server, body, content_type)


@settings(STRICT, max_examples=50)
@given(body=form_bodies(), content_type=st.sampled_from(FORM_TYPES))
def test_signed_form_payloads_of_any_shape_are_never_5xx(server, body, content_type):
    form_property(server, body, content_type)


# -- 4. signature headers ------------------------------------------------------------------------

def sendable(value: str) -> bool:
    """What ``requests`` sends as a header value: latin-1, no CR/LF, no leading whitespace."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return re.fullmatch(r"\S[^\r\n]*|", value) is not None


latin1 = st.text(st.characters(max_codepoint=0xFF), max_size=40)
header_values = st.one_of(
    latin1, st.just(""), st.none(),                                           # None: header left out
    st.integers(10**12, 10**40).map(str), st.integers(-(10**20), -1).map(str),
    st.integers(0, 10**12 - 1).map(str),                                       # shaped like a timestamp
    st.floats().map(repr), st.sampled_from(["١٧٠٠٠٠٠٠٠٠", "1e10", "0x10", "+1", " 1", "1 ", "¹²³"]),
    st.text("0123456789abcdefABCDEF", min_size=1, max_size=130).map(lambda h: "v0=" + h),   # shaped like v0=
    latin1.map(lambda s: "v0=" + s), st.sampled_from(["v1=00", "v0=", "V0=00", "v0=" + "0" * 64]),
).filter(lambda v: v is None or sendable(v))


@st.composite
def signature_headers(draw, body: bytes) -> dict:
    good = sign(body, SECRET)
    how = draw(st.sampled_from(["timestamp", "signature", "both", "stale", "other_secret", "other_body"]))
    if how == "timestamp":
        value = draw(header_values.filter(lambda v: v != good["X-Slack-Request-Timestamp"]))
        return {**good, "X-Slack-Request-Timestamp": value}
    if how == "signature":
        value = draw(header_values.filter(lambda v: v != good["X-Slack-Signature"]))
        return {**good, "X-Slack-Signature": value}
    if how == "both":
        return {"X-Slack-Request-Timestamp": draw(header_values), "X-Slack-Signature": draw(header_values)}
    if how == "stale":      # a correct signature, replayed too late or dated in the future
        skew = draw(st.integers(301, 10**9)) * draw(st.sampled_from([-1, 1]))
        return sign(body, SECRET, timestamp=max(0, int(time.time()) + skew))
    if how == "other_secret":
        return sign(body, draw(st.text(min_size=1, max_size=30).filter(lambda s: s != SECRET)))
    return sign(body + draw(st.binary(min_size=1, max_size=10)), SECRET)


def good_mention() -> dict:
    return {"type": "app_mention", "channel": "C1", "user": "U1", "text": f"<@{BOT}> how do I restart billing?",
            "ts": f"{time.time():.6f}", "channel_type": "channel"}


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_bad_signature_headers_are_401(server, data):
    body = event_body(good_mention(), event_id=f"Ev{uuid.uuid4().hex[:10]}")
    headers = data.draw(signature_headers(body))
    resp = send(server, body, signed=False, headers=headers)
    if resp.text == "Invalid HTTP request received.":
        assert resp.status_code == 400          # uvicorn: a control character in a header value
    else:
        assert resp.status_code == 401, (resp.status_code, resp.text[:200], headers)
    assert server.enqueued == []
    assert_alive(server)


# -- 4b. anything without a valid signature ----------------------------------------------------------

def unsigned_property(web: Web, value: dict, how: str) -> None:
    body = json.dumps(value).encode()
    headers = {"none": {}, "other_secret": sign(body, "not-" + SECRET),
               "stale": sign(body, SECRET, timestamp=int(time.time()) - 3600)}[how]
    resp = send(web, body, signed=False, headers=headers)
    if value.get("ssl_check") == "1":
        assert resp.status_code in (200, 401)   # Slack's ssl_check is answered without a signature
    else:
        assert resp.status_code == 401, (resp.status_code, resp.text[:200], resp.server_error, value)
    assert web.enqueued == []
    assert_alive(web)


UNSIGNED_ARGS = dict(value=json_objects | envelopes | near_envelopes() | whose_envelopes(),
                     how=st.sampled_from(["none", "other_secret", "stale"]))


@settings(FUZZ, max_examples=40)
@given(**UNSIGNED_ARGS)
def test_unsigned_json_objects_are_refused_survives(server, value, how):
    unsigned_property(server, value, how)


@settings(STRICT, max_examples=40)
@given(**UNSIGNED_ARGS)
def test_unsigned_json_objects_are_always_401(server, value, how):
    unsigned_property(server, value, how)


# -- the 500s the fuzzing found, minimal (regressions) ----------------------------------------

@pytest.mark.parametrize("body,content_type,signed", [
    (b'{"team": 5}', "application/json", True),
    (b'{"team": 5}', "application/json", False),                        # before the signature is checked
    (b'{"authorizations": 5}', "application/json", True),
    (b'{"response_urls": 5}', "application/json", True),
    (b'{"type": "event_callback", "api_app_id": "A123", "team_id": "T123", "event": "x"}', "application/json",
     True),
    (b'{"type": "event_callback", "api_app_id": "A123", "team_id": "T123", "event": {"type": "app_mention", '
     b'"text": 5, "user": "U1", "channel": "C1", "ts": "1.0"}}', "application/json", True),
    (b' {"x": "&payload=5"}', "Application/JSON", True),
    (b"authorizations=x", "application/x-www-form-urlencoded", True),
    (b"{=1", "application/x-www-form-urlencoded", True),
    (b"payload=%7B%7D&payload=%5B%5D", "application/x-www-form-urlencoded", True),     # {} then []
    (b"payload=%7B%22user%22%3A5%7D", "application/x-www-form-urlencoded", True),     # {"user":5}
], ids=["team-int", "team-int-unsigned", "authorizations-int", "response_urls-int", "event-str",
        "mention-text-int", "json-mixed-case-type", "form-authorizations", "form-starting-with-brace",
        "form-two-payloads", "form-payload-user-int"])
def test_known_500s(server, body, content_type, signed):
    resp = send(server, body, content_type=content_type, signed=signed)
    assert resp.status_code < 500, (resp.status_code, resp.text[:200], resp.server_error)
    assert server.enqueued == []


# -- 5. after all that, the server still works ---------------------------------------------------------

def test_a_good_event_still_goes_through_after_the_fuzzing(server):
    assert_alive(server)
    resp = send(server, event_body(good_mention(), event_id=f"Ev{uuid.uuid4().hex[:10]}"))
    assert resp.status_code == 200, resp.text
    assert [kind for kind, _ in server.enqueued] == ["question"]
    assert server.enqueued[0][1]["channel"] == "C1" and server.enqueued[0][1]["team"] == TEAM
