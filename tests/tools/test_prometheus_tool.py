"""The ``prometheus`` tool kind against the loopback Prometheus (standins/fake_prometheus.py), through
the real requests client: configuration errors naming the key, the definitions the model sees,
a query with its parameter, values that never reach the server, Prometheus' error shapes."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest
import requests

from chatops.checks import CheckFailed
from chatops.errors import ConfigError
from chatops.tools import ToolSpec
from connectors.tools.base import Caller, ToolDeps, ToolFailed
from connectors.tools.prometheus import PrometheusTool
from connectors.tools.registry import build_tool
from standins.fake_prometheus import FakePrometheus, matrix, scalar, vector

ERROR_RATE = ('sum(rate(http_requests_total{service="$service",code=~"5.."}[5m])) '
              '/ sum(rate(http_requests_total{service="$service"}[5m]))')
ASKER = Caller("id-ana", "ana@contoso.com", "UANA")
SECRETS = {"PROM_TOKEN": "prom-token-1"}


def rendered(service: str) -> str:
    return ERROR_RATE.replace("$service", service)


@pytest.fixture
def prom():
    with FakePrometheus() as fake:
        yield fake


def make(prom_or_url, secrets=None, **settings) -> PrometheusTool:
    url = prom_or_url if isinstance(prom_or_url, str) else prom_or_url.url
    entry = {"name": "health", "kind": "prometheus", "url": url,
             "queries": {"error_rate": ERROR_RATE, "up": "up"},
             "params": {"service": {"enum": ["billing", "checkout", "search"], "description": "the service"}},
             **settings}
    entry = {k: v for k, v in entry.items() if v is not None}
    deps = ToolDeps(http=requests.Session(), secret=(secrets or {}).get)
    tool = build_tool(ToolSpec.model_validate(entry), deps)
    assert isinstance(tool, PrometheusTool)
    return tool


# -- configuration ------------------------------------------------------------------------------

@pytest.mark.parametrize("settings, message", [
    ({"colour": "blue"}, "tool 'health': colour: unknown key"),
    ({"queries": {"error_rate": ERROR_RATE}, "params": {}},
     "tool 'health': queries.error_rate: uses $service, which params: does not declare"),
    ({"queries": {"by_window": "rate(x[$window])"}},
     "tool 'health': queries.by_window: uses $window, which params: does not declare"),
    ({"url": "http://prometheus.internal:9090"}, "tool 'health': url: must be https (http only to a loopback host)"),
    ({"url": "ftp://prometheus.internal"}, "tool 'health': url: 'ftp://prometheus.internal' is not a Prometheus"),
    ({"params": {"service": {"enum": ['billing"} or vector(1) or {a="']}}},
     "tool 'health': params.service.enum: 'billing\"} or vector(1) or {a=\"': values must be"),
    ({"params": {"service": {"pattern": ".+"}}}, "tool 'health': params.service.pattern: matches '\"'"),
    ({"params": {"service": {"pattern": "[a-z"}}}, "tool 'health': params.service.pattern: not a regular expression"),
    ({"params": {"service": {"enum": ["a"], "pattern": "[a-z]+"}}},
     "tool 'health': params.service: give either enum: [...] or pattern: '...'"),
    ({"params": {"service": {"enum": ["a"], "colour": "x"}}}, "tool 'health': params.service.colour: unknown key"),
    ({"queries": {"raw": "up{job=`$service`}"}}, "tool 'health': queries.raw: $service sits in a raw (backtick)"),
    ({"queries": {"error-rate": "up"}}, "tool 'health': queries.error-rate: a query's name is a function name"),
    ({"queries": {}}, "tool 'health': queries: name at least one query"),
    ({"url": None}, "tool 'health': url: required"),
    ({"timeout": 0}, "tool 'health': timeout: Input should be greater than 0"),
    ({"allow": ["error_rate", "latency"]}, "tool 'health': allow: no query named latency"),
    ({"auth": {"bearer_env": "PROM_MISSING"}}, "tool 'health': auth.bearer_env: the environment variable "
                                               "PROM_MISSING is not set"),
    ({"auth": {"token": "x"}}, "tool 'health': auth.bearer_env: required"),
])
def test_configuration_errors_name_the_tool_and_the_key(settings, message):
    with pytest.raises(ConfigError) as caught:
        make("https://prometheus.internal", **settings)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_good_configuration_is_accepted():
    tool = make("https://prometheus.internal/prom/", secrets=SECRETS, auth={"bearer_env": "PROM_TOKEN"},
                params={"service": {"enum": ["billing"]}, "window": {"pattern": "[0-9]+[smh]"}},
                queries={"error_rate": ERROR_RATE, "rate": 'rate(x{job="$service"}[$window])'}, timeout=5)
    assert tool.url == "https://prometheus.internal/prom"
    assert tool.kind == "prometheus" and tool.name == "health"


# -- definitions ----------------------------------------------------------------------------------

def test_one_read_only_definition_per_query_declaring_its_parameters(prom):
    tool = make(prom, params={"service": {"enum": ["billing", "checkout"], "description": "the service"},
                              "window": {"pattern": "[0-9]+[smh]"}},
                queries={"error_rate": ERROR_RATE, "rate": 'rate(x{job="$service"}[$window])', "up": "up"})
    defs = {d.name: d for d in tool.definitions(None)}
    assert list(defs) == ["error_rate", "rate", "up"]
    assert defs["error_rate"].input_schema == {
        "type": "object", "properties": {"service": {"type": "string", "enum": ["billing", "checkout"],
                                                     "description": "the service"}},
        "required": ["service"], "additionalProperties": False}
    assert defs["rate"].input_schema["properties"]["window"] == {"type": "string", "pattern": "^(?:[0-9]+[smh])$",
                                                                 "maxLength": 256}
    assert defs["rate"].input_schema["required"] == ["service", "window"]
    assert defs["up"].input_schema["properties"] == {} and defs["up"].input_schema["required"] == []
    assert "PromQL: " + ERROR_RATE in defs["error_rate"].description
    for d in defs.values():
        assert d.annotations == {"readOnlyHint": True, "destructiveHint": False}
        assert d.not_read_only() is None
    # the definitions depend on the configuration only: what an operator pins stays pinned
    assert [d.fingerprint() for d in tool.definitions(None)] == [d.fingerprint() for d in defs.values()]


# -- a call ---------------------------------------------------------------------------------------

def test_a_query_runs_with_its_parameter_and_answers_one_line_per_series(prom):
    prom.set_result(rendered("billing"), vector(({"service": "billing"}, 0.0123)))
    tool = make(prom)
    out = tool.call("error_rate", {"service": "billing"}, ASKER, timeout=5)
    assert out.text.splitlines()[1] == '{service="billing"} = 0.0123'
    assert re.fullmatch(r"evaluated at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", out.text.splitlines()[0])
    assert out.items == () and not out.is_error
    assert out.url == f"{prom.url}/graph?g0.expr=" + requests.utils.quote(rendered("billing"), safe="")
    [seen] = prom.received
    assert seen.method == "POST" and seen.query == rendered("billing")
    assert float(seen.timeout) <= 5 and float(seen.time) > 0
    assert tool.describe_call("error_rate", {"service": "billing"}) == "error_rate(service=billing)"


def test_each_series_is_one_line_at_the_evaluation_time_in_utc(prom):
    prom.set_result("up", vector(({"__name__": "up", "job": "api", "instance": "a:9100"}, 1),
                                 ({"__name__": "up", "job": "api", "instance": "b:9100"}, 0)))
    before = time.time()
    out = make(prom).call("up", {}, ASKER, timeout=5)
    lines = out.text.splitlines()
    assert lines[1:] == ['up{instance="a:9100", job="api"} = 1', 'up{instance="b:9100", job="api"} = 0']
    # the query is evaluated at the time the tool sent (now), which the first line gives in UTC
    sent = float(prom.received[0].time)
    assert before - 1 <= sent <= time.time()
    assert lines[0] == "evaluated at " + datetime.fromtimestamp(sent, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_no_series_is_no_data_and_scalar_and_matrix_results_are_shown(prom):
    tool = make(prom, queries={"up": "up", "ratio": "scalar(sum(up))", "recent": "up[1m]"})
    assert tool.call("up", {}, ASKER, timeout=5).text.splitlines()[1] == "no data (no series matched)"
    prom.set_result("scalar(sum(up))", scalar(2.5))
    assert tool.call("ratio", {}, ASKER, timeout=5).text.splitlines()[1] == "scalar = 2.5"
    prom.set_result("up[1m]", matrix(({"job": "api"}, [1, 1, 0])))
    line = tool.call("recent", {}, ASKER, timeout=5).text.splitlines()[1]
    assert re.fullmatch(r'\{job="api"\} = \[1 @ \d\d:\d\d:\d\d, 1 @ \d\d:\d\d:\d\d, 0 @ \d\d:\d\d:\d\d\]', line), line


def test_a_value_outside_the_enum_never_reaches_prometheus(prom):
    tool = make(prom)
    for bad in ({"service": "payroll"}, {"service": 'billing"} or vector(1) #'}, {}, {"service": 3},
                {"service": "billing", "extra": "x"}):
        with pytest.raises(ToolFailed) as caught:
            tool.call("error_rate", bad, ASKER, timeout=5)
        assert not caught.value.transient
    with pytest.raises(ToolFailed, match="no query named 'drop_all'"):
        tool.call("drop_all", {}, ASKER, timeout=5)
    assert prom.received == [] and prom.requests == []


def test_an_injection_through_a_pattern_parameter_is_refused_before_it_is_sent(prom):
    # patterns that slip past the start-up probes still never let a value out of its place
    tool = make(prom, params={"service": {"pattern": '[a-z]{3,}("[a-z ]*)?'},
                              "window": {"pattern": "[0-9smh()+ ]+"}},
                queries={"error_rate": ERROR_RATE, "rate": 'rate(x{job="$service"}[$window])'})
    with pytest.raises(ToolFailed, match="may not hold quotes"):
        tool.call("error_rate", {"service": 'abc"or vector'}, ASKER, timeout=5)
    with pytest.raises(ToolFailed, match=r"only letters, digits, _, \. and :"):
        tool.call("rate", {"service": "api", "window": "5m) + (1"}, ASKER, timeout=5)
    with pytest.raises(ToolFailed, match="does not match the pattern"):
        tool.call("rate", {"service": "api", "window": "5m] or up[5m"}, ASKER, timeout=5)
    assert prom.received == []
    prom.set_result('rate(x{job="api"}[5m])', vector(({"job": "api"}, 0.5)))
    assert tool.call("rate", {"service": "api", "window": "5m"}, ASKER, timeout=5).text.endswith(
        '{job="api"} = 0.5')


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, kind, transient", [
    ("execution", "execution", False), ("timeout", "timeout", True), ("unavailable", "unavailable", True),
    ("internal", "internal", True)])
def test_prometheus_errors_fail_the_call_with_their_type(prom, mode, kind, transient):
    prom.mode = mode
    with pytest.raises(ToolFailed) as caught:
        make(prom).call("error_rate", {"service": "billing"}, ASKER, timeout=5)
    assert str(caught.value).startswith(f"Prometheus {kind}: ")
    assert caught.value.transient is transient


def test_a_query_prometheus_cannot_parse_is_bad_data(prom):
    tool = make(prom, queries={"broken": 'sum(rate(http_requests_total{service="$service"[5m]))'})
    with pytest.raises(ToolFailed) as caught:
        tool.call("broken", {"service": "billing"}, ASKER, timeout=5)
    assert str(caught.value).startswith('Prometheus bad_data: invalid parameter "query": 1:')
    assert not caught.value.transient


def test_a_hanging_or_unreachable_prometheus_is_transient(prom):
    tool = make(prom)
    prom.mode = "hang"
    with pytest.raises(ToolFailed) as caught:
        tool.call("error_rate", {"service": "billing"}, ASKER, timeout=0.5)
    assert caught.value.transient
    prom.stop()
    with pytest.raises(ToolFailed) as caught:
        tool.call("error_rate", {"service": "billing"}, ASKER, timeout=2)
    assert caught.value.transient and "could not reach Prometheus" in str(caught.value)


def test_a_bearer_token_is_sent_and_a_refusal_is_said():
    with FakePrometheus(token="prom-token-1") as prom:
        tool = make(prom, secrets=SECRETS, auth={"bearer_env": "PROM_TOKEN"})
        tool.call("up", {}, ASKER, timeout=5)
        assert prom.received[-1].authorization == "Bearer prom-token-1"
        assert tool.check() == f"Prometheus 2.53.1 at {prom.url}"
        wrong = make(prom, secrets={"PROM_TOKEN": "stale"}, auth={"bearer_env": "PROM_TOKEN"})
        with pytest.raises(ToolFailed, match=r"refused the credentials \(401\)") as caught:
            wrong.call("up", {}, ASKER, timeout=5)
        assert not caught.value.transient
        with pytest.raises(CheckFailed, match="refused the credentials"):
            wrong.check()


def test_check_reads_the_build_info(prom):
    tool = make(prom)
    assert tool.check() == f"Prometheus 2.53.1 at {prom.url}"
    prom.stop()
    with pytest.raises(CheckFailed) as caught:
        tool.check()
    assert caught.value.fix


# -- the stand-in speaks Prometheus' API ------------------------------------------------------------

def test_the_stand_in_answers_like_prometheus(prom):
    prom.set_result("up", vector(({"__name__": "up", "job": "api"}, 1)))
    got = requests.get(f"{prom.url}/api/v1/query", params={"query": "up", "time": "1764489600.5"}, timeout=5)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("application/json")
    assert got.json() == {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "up", "job": "api"}, "value": [1764489600.5, "1"]}]}}
    posted = requests.post(f"{prom.url}/api/v1/query", data={"query": "scalar(1)"}, timeout=5).json()
    assert posted["data"]["resultType"] == "vector" and posted["data"]["result"] == []
    for query, status, message in [("up{job=\"api\"", 400, "unexpected end of input inside braces"),
                                   ("sum(up", 400, "unclosed left parenthesis"),
                                   ("up)", 400, "unexpected right parenthesis ')'"),
                                   ('up{job="$service"} > $x', 400, "unexpected character: '$'"),
                                   ("", 400, "no expression found in input")]:
        bad = requests.post(f"{prom.url}/api/v1/query", data={"query": query}, timeout=5)
        assert bad.status_code == status and bad.json()["status"] == "error", query
        assert bad.json()["errorType"] == "bad_data" and message in bad.json()["error"], bad.json()
    bad_time = requests.get(f"{prom.url}/api/v1/query", params={"query": "up", "time": "soon"}, timeout=5)
    assert bad_time.status_code == 400 and 'invalid parameter "time"' in bad_time.json()["error"]
    prom.mode = "execution"
    assert requests.get(f"{prom.url}/api/v1/query", params={"query": "up"}, timeout=5).status_code == 422
    info = requests.get(f"{prom.url}/api/v1/status/buildinfo", timeout=5).json()
    assert info["status"] == "success" and info["data"]["version"] == "2.53.1"
    assert requests.delete(f"{prom.url}/api/v1/query", timeout=5).status_code == 405
    assert requests.get(f"{prom.url}/api/v2/query", timeout=5).status_code == 404
