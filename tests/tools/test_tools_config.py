"""The tools: of CHATOPS_CONFIG checked at start-up: each mistake names the tool and the field."""

from __future__ import annotations

import pytest
import yaml

from chatops.errors import ConfigError
from chatops.groups import GroupNames
from chatops.settings import Settings
from chatops.tools import load_specs
from chatops_app.container import Container

PROM = {"name": "health", "kind": "prometheus", "url": "https://prometheus.internal",
        "queries": {"error_rate": 'sum(rate(x{service="$service"}[5m]))'}, "params": {"service": {"enum": ["a"]}}}


@pytest.mark.parametrize("entry, named", [
    ({"kind": "mcp", "url": "https://x"}, r"tools\[0\]: name: Field required"),
    ({"name": "pager_duty", "kind": "mcp"}, "tool 'pager_duty': name: Value error, must start with a letter"),
    ({**PROM, "results": "everyone"}, "tool 'health': results: Input should be 'public' or 'asker'"),
    ({**PROM, "allow": []}, "tool 'health': allow: Value error, must list at least one function"),
    ({**PROM, "groups": "sre"}, "tool 'health': groups: Input should be a valid list"),
])
def test_a_mistake_in_the_shared_keys_names_the_tool_and_the_field(entry, named):
    with pytest.raises(ConfigError, match=named):
        load_specs([entry], GroupNames())


def test_two_tools_of_one_name_and_an_unknown_kind_are_refused():
    with pytest.raises(ConfigError, match="tool 'health': name: another tool has this name"):
        load_specs([PROM, PROM], GroupNames())
    with pytest.raises(ConfigError, match="tool 'x': kind: unknown tool kind 'pagerduty' \\(known: mcp, prometheus\\)"):
        load_specs([{"name": "x", "kind": "pagerduty"}], GroupNames(), known_kinds=lambda: ["mcp", "prometheus"])


def test_a_group_that_is_no_object_id_is_refused_where_groups_are_object_ids():
    with pytest.raises(ConfigError, match="tool 'health': groups: group 'sre' is neither an alias"):
        load_specs([{**PROM, "groups": ["sre"]}], GroupNames(require_object_ids=True))


def container_for(tmp_path, tools: list[dict]) -> Container:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"tools": tools}))
    return Container(Settings.load(CHATOPS_CONFIG=str(config), CHATOPS_DATA_DIR=str(tmp_path / "data"),
                                   SLACK_BOT_TOKEN="xoxb-x", SLACK_SIGNING_SECRET="s",
                                   SLACK_API_URL="http://127.0.0.1:9/api/"))


@pytest.mark.parametrize("entry, named", [
    ({**PROM, "colour": "red"}, "tool 'health': colour: unknown"),
    ({**PROM, "url": "http://prometheus.internal"}, "tool 'health': url:"),
    ({"name": "pd", "kind": "mcp", "url": "https://mcp.example.com/mcp", "auth": {"bearer": "x"}}, "tool 'pd': auth"),
    ({"name": "pd", "kind": "statuspage"}, "tool 'pd': kind: unknown tool kind 'statuspage'"),
])
def test_a_mistake_in_a_kinds_settings_stops_the_worker_naming_the_tool_and_the_key(tmp_path, entry, named):
    container = container_for(tmp_path, [entry])
    try:
        with pytest.raises(ConfigError, match=named):
            container.toolbox       # what `chatops worker` builds before it starts
    finally:
        container.close()


def test_the_web_process_stops_at_start_up_on_a_bad_tool(tmp_path):
    container = container_for(tmp_path, [{**PROM, "results": "everyone"}])
    try:
        with pytest.raises(ConfigError, match="tool 'health': results"):
            container.web_app()
    finally:
        container.close()
