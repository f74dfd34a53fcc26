"""The settings reference is true: every setting the code reads is documented, and nothing else.

The settings come from the models themselves (SETTINGS_MODELS: the core's, Slack's, and every
model the plugin registries declare, so a new plugin's settings are checked with nothing to add
here; each field's environment names come from its ``validation_alias``: the first name is the
canonical one, the others are aliases). The application loads exactly those models at start.

* docs/configuration.md: every setting has a table row whose first column names it in
  backticks, once, followed by its default in parentheses when the code has one
  (`NAME` (default), extra words after the value allowed: `(900 s)`). Every upper-case
  ENV_NAME the page mentions anywhere is a setting, an alias, or in LIBRARY_VARIABLES.
* deploy/.env.example: every setting is listed once as ``NAME=value``, commented out unless it
  has no default; where it has a default the value shown is that default (EXAMPLE_NOT_DEFAULT
  lists the exceptions, with why). Every variable deploy/compose.yml interpolates is listed too,
  with compose's default. Every other ENV_NAME in its comments is known.
* deploy/compose.yml and deploy/k8s: the environment given to the chatops containers (compose
  ``environment:``, the ConfigMap they load, container ``env:``) names settings only, and every
  ENV_NAME in these files, comments included, is known.

Each problem is one line saying what to do. The checks also run on edited copies of the files,
to show they fail.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, TypeAdapter
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from bot.settings import SlackSettings
from chatops.settings import PluginSettings, Settings
from chatops_app.settings import PLUGIN_SETTINGS
from connectors.actions import registry as actions
from connectors.embeddings import registry as embeddings
from connectors.identity import registry as identity
from connectors.index import registry as index
from connectors.llm import registry as llm
from connectors.rerank import registry as rerank
from connectors.sources import registry as sources
from connectors.tools import registry as tools

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
COMPOSE = ROOT / "deploy" / "compose.yml"
K8S = ROOT / "deploy" / "k8s"

# The plugin registries and their entries: each may declare its own settings (``SETTINGS``) and each
# entry a model of its own (``settings``).
REGISTRIES = {identity: identity.PROVIDERS, index: index.ENGINES, llm: llm.PROVIDERS, rerank: rerank.RERANKERS,
              sources: sources.SOURCES,
              actions: actions.CONNECTORS, tools: tools.KINDS, embeddings: embeddings.PROVIDERS}


def declared_models() -> list[type[BaseSettings]]:
    """Every model whose fields are read from the environment: the core's, Slack's (bot/ is the
    Slack plugin), each registry's own and each registry entry's, once each."""
    models: list[type[BaseSettings]] = [Settings, SlackSettings]
    for registry, entries in REGISTRIES.items():
        models += getattr(registry, "SETTINGS", ())
        for entry in entries.values():
            model = getattr(entry, "settings", None)
            if isinstance(model, type) and issubclass(model, PluginSettings):
                models.append(model)
    return list(dict.fromkeys(models))


SETTINGS_MODELS = declared_models()

# Read by a library or another program, not by a settings model: the docs and the deployment
# files may mention these. Names here must not be settings.
LIBRARY_VARIABLES = {
    "REQUESTS_CA_BUNDLE": "requests (msal's HTTP session): the CA bundle that TLS trusts",
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client's multiprocess folder (`serve --workers N` sets one)",
    "QDRANT__SERVICE__API_KEY": "the Qdrant server's own API key, set on its container",
}

# Settings whose deploy/.env.example value is an example for compose rather than the code's
# default, and why.
EXAMPLE_NOT_DEFAULT = {
    "REDIS_URL": "compose's redis service (compose.yml sets it for every chatops container)",
    "CHATOPS_DATA_DIR": "the image's data volume (the Dockerfile sets /data)",
}

ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:__?[A-Z0-9]+)+\b")       # SLACK_BOT_TOKEN, QDRANT__SERVICE__API_KEY
DOCUMENTED = re.compile(r"`([A-Z][A-Z0-9_]*)`(?:\s*\(([^()]*)\))?")  # `NAME` or `NAME` (default ...)
ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")          # NAME=value or # NAME=value
INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::?-([^}]*))?\}")  # compose's ${NAME:-default}


@dataclass(frozen=True)
class Setting:
    env: str                    # the canonical environment name: the first of the field's names
    aliases: tuple[str, ...]    # the others, also read
    where: str                  # Model.field
    annotation: Any
    default: Any                # None: no default (unset, or required)

    def parse(self, text: str) -> Any:
        return TypeAdapter(self.annotation).validate_python(text)

    def shows_default(self, text: str) -> bool:
        """``text`` (a documented or example value) is this setting's default."""
        try:
            return self.parse(text) == self.default
        except ValueError:
            return False

    @property
    def default_text(self) -> str:
        value = self.default
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)


def settings_of(models: list[type[BaseSettings]]) -> list[Setting]:
    found = []
    for model in models:
        prefix = model.model_config.get("env_prefix", "")
        for name, field in model.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names = [c for c in alias.choices if isinstance(c, str)]
            elif isinstance(alias, str):
                names = [alias]
            else:
                names = [f"{prefix}{name}"]
            default = field.get_default(call_default_factory=True)
            found.append(Setting(env=names[0].upper(), aliases=tuple(n.upper() for n in names[1:]),
                                 where=f"{model.__name__}.{name}", annotation=field.annotation,
                                 default=None if default is PydanticUndefined else default))
    return found


SETTINGS = settings_of(SETTINGS_MODELS)
BY_ENV = {s.env: s for s in SETTINGS}
ALIAS_OF = {alias: s.env for s in SETTINGS for alias in s.aliases}


def _example_value(setting: Setting) -> str:
    return setting.default_text if setting.default is not None else "<example>"


# -- docs/configuration.md ------------------------------------------------------------------------


def configuration_problems(text: str, settings: list[Setting] = SETTINGS) -> list[str]:
    page = "docs/configuration.md"
    by_env = {s.env: s for s in settings}
    alias_of = {alias: s.env for s in settings for alias in s.aliases}
    problems, rows = [], defaultdict(list)
    for number, line in enumerate(text.splitlines(), 1):
        for name in ENV_NAME.findall(line):
            if name not in by_env and name not in alias_of and name not in LIBRARY_VARIABLES:
                problems.append(f"{page} line {number}: `{name}` is read by no settings model: correct the name, "
                                f"remove it, or (a library's variable) add it to LIBRARY_VARIABLES in this test")
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        first_column = line.strip().strip("|").split("|")[0]
        for name, shown in DOCUMENTED.findall(first_column):
            rows[name].append(number)
            setting = by_env.get(name)
            if name in alias_of:
                problems.append(f"{page} line {number}: `{name}` is an alias of `{alias_of[name]}`: name "
                                f"`{alias_of[name]}` in the first column (the alias may be mentioned in the meaning)")
            elif name in LIBRARY_VARIABLES:
                problems.append(f"{page} line {number}: `{name}` is a library's variable, not a setting: mention it "
                                f"in the meaning column of the setting it goes with instead of the first column")
            elif setting is None:
                continue    # reported above, as a name nothing reads
            elif setting.default is None and shown:
                problems.append(f"{page} line {number}: `{name}` shows a default ({shown}) but {setting.where} has "
                                f"none: remove the parentheses and describe what unset means in the meaning column")
            elif setting.default is not None and not shown:
                problems.append(f"{page} line {number}: `{name}` defaults to {setting.default_text} "
                                f"({setting.where}): write `{name}` ({setting.default_text})")
            elif setting.default is not None and not setting.shows_default(_first_word(shown)):
                problems.append(f"{page} line {number}: `{name}` shows default ({shown}) but {setting.where} "
                                f"defaults to {setting.default_text}: write `{name}` ({setting.default_text})")
    for setting in settings:
        lines = rows.get(setting.env, [])
        if not lines:
            default = f" ({setting.default_text})" if setting.default is not None else ""
            problems.append(f"{page}: add a table row for `{setting.env}`{default}, read by {setting.where}, "
                            f"with a one-line meaning")
        elif len(lines) > 1:
            problems.append(f"{page}: `{setting.env}` is in the first column of lines "
                            f"{', '.join(map(str, lines))}: keep one row")
    return problems


def _first_word(shown: str) -> str:
    """The value of a documented default: `(900 s)` -> 900, `(1048576, 1 MiB)` -> 1048576."""
    return re.split(r"[\s,;]", shown.strip(), maxsplit=1)[0].strip("`")


# -- deploy/.env.example --------------------------------------------------------------------------


def compose_variables(compose_text: str) -> dict[str, str | None]:
    """Variables compose.yml interpolates (read by docker compose from deploy/.env), with defaults."""
    found: dict[str, str | None] = {}
    for name, default in INTERPOLATION.findall(compose_text):
        found[name] = default or found.get(name)
    return found


def env_example_problems(text: str, compose_text: str, settings: list[Setting] = SETTINGS) -> list[str]:
    page = "deploy/.env.example"
    by_env = {s.env: s for s in settings}
    alias_of = {alias: s.env for s in settings for alias in s.aliases}
    compose_vars = compose_variables(compose_text)
    problems, listed = [], defaultdict(list)
    for number, line in enumerate(text.splitlines(), 1):
        assignment = ASSIGNMENT.match(line.strip())
        if assignment:
            commented, name, value = bool(assignment[1]), assignment[2], assignment[3].strip()
            listed[name].append(number)
            value = value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"" else value
            problems += _assignment_problems(page, number, commented, name, value, by_env, alias_of, compose_vars)
            continue
        for name in ENV_NAME.findall(line):
            if not (name in by_env or name in alias_of or name in LIBRARY_VARIABLES or name in compose_vars):
                problems.append(f"{page} line {number}: the comment names `{name}`, which nothing reads: "
                                f"correct the name or remove it")
    for setting in settings:
        if setting.env not in listed:
            problems.append(f"{page}: add `# {setting.env}={_example_value(setting)}` with a comment, in its "
                            f"section (read by {setting.where})")
    for name, default in compose_vars.items():
        if name not in listed:
            problems.append(f"{page}: add `# {name}={default or '<example>'}` to the compose-only section "
                            f"(deploy/compose.yml interpolates it)")
    for name, lines in listed.items():
        if len(lines) > 1:
            problems.append(f"{page}: `{name}` is set on lines {', '.join(map(str, lines))}: keep one")
    return problems


def _assignment_problems(page, number, commented, name, value, by_env, alias_of, compose_vars) -> list[str]:
    where = f"{page} line {number}"
    if name in alias_of:
        return [f"{where}: `{name}` is an alias of `{alias_of[name]}`: list `{alias_of[name]}` instead"]
    if name in LIBRARY_VARIABLES:
        return [f"{where}: `{name}` is a library's variable, not a setting: mention it in a comment instead"]
    setting = by_env.get(name)
    if setting is None:
        if name not in compose_vars:
            return [(f"{where}: `{name}` is read by no settings model nor deploy/compose.yml: correct the name "
                    f"or remove the line")]
        default = compose_vars[name]
        if default is not None and value != default:
            return [f"{where}: `{name}={value}` but compose.yml's default is {default}: write `# {name}={default}`"]
        return []
    if setting.default is None:
        return []
    if not commented:
        return [f"{where}: `{name}` has a default ({setting.default_text}, {setting.where}): comment the line out"]
    if name not in EXAMPLE_NOT_DEFAULT and not setting.shows_default(value):
        return [(f"{where}: `{name}={value}` but {setting.where} defaults to {setting.default_text}: write "
                f"`# {name}={setting.default_text}` (or add it to EXAMPLE_NOT_DEFAULT in this test, with why)")]
    return []


# -- deploy/compose.yml and deploy/k8s --------------------------------------------------------------


def _names_in_text(page: str, text: str, known: set[str]) -> list[str]:
    return [f"{page} line {number}: `{name}` is read by no settings model: correct the name or remove it"
            for number, line in enumerate(text.splitlines(), 1)
            for name in ENV_NAME.findall(line) if name not in known]


def _given_names(page: str, names, known: set[str]) -> list[str]:
    problems = []
    for name in names:
        if name in ALIAS_OF:
            problems.append(f"{page}: `{name}` is an alias of `{ALIAS_OF[name]}`: set `{ALIAS_OF[name]}`")
        elif name not in known:
            problems.append(f"{page}: the chatops containers get `{name}`, which no settings model reads: "
                            f"correct the name or remove it")
    return problems


def _environment_names(environment) -> list[str]:
    if isinstance(environment, dict):
        return list(environment)
    return [item.split("=", 1)[0] for item in environment or []]


def deployment_problems(compose_text: str, k8s_texts: dict[str, str]) -> list[str]:
    """deploy/compose.yml's text, and each deploy/k8s file's by name."""
    settings_or_library = set(BY_ENV) | set(LIBRARY_VARIABLES)
    known = settings_or_library | set(ALIAS_OF)
    compose = yaml.safe_load(compose_text)
    problems, other_programs = [], set()
    for service_name, service in compose["services"].items():
        names = _environment_names(service.get("environment"))
        if "build" in service or str(service.get("image", "")).startswith("chatops"):
            problems += _given_names(f"deploy/compose.yml service {service_name}", names, settings_or_library)
        else:
            other_programs.update(names)      # read by that container's program (Grafana's GF_*)
    problems += _names_in_text("deploy/compose.yml", compose_text,
                               known | set(compose_variables(compose_text)) | other_programs)
    config_maps, loaded = {}, set()
    for file_name, text in sorted(k8s_texts.items()):
        problems += _names_in_text(f"deploy/k8s/{file_name}", text, known)
        for doc in yaml.safe_load_all(text):
            if doc and doc.get("kind") == "ConfigMap":
                config_maps[doc["metadata"]["name"]] = doc.get("data", {})
            if doc and doc.get("kind") in ("Deployment", "StatefulSet", "Job", "CronJob"):
                pod = doc["spec"]["template"]["spec"]
                for container in pod["containers"] + pod.get("initContainers", []):
                    page = f"deploy/k8s/{file_name} container {container['name']}"
                    names = [e["name"] for e in container.get("env", [])]
                    problems += _given_names(page, names, settings_or_library)
                    refs = container.get("envFrom", [])
                    loaded.update(r["configMapRef"]["name"] for r in refs if "configMapRef" in r)
    for name in sorted(loaded & set(config_maps)):     # ConfigMaps the containers take as environment
        problems += _given_names(f"deploy/k8s ConfigMap {name}", config_maps[name], settings_or_library)
    return problems


# -- the checks on the real files -----------------------------------------------------------------


def _report(problems: list[str]) -> str:
    return f"{len(problems)} problem(s):\n" + "\n".join(problems)


def test_the_application_loads_every_declared_model():
    """chatops_app/settings.py reads every plugin's model at start (a bad value stops the process)."""
    assert set(PLUGIN_SETTINGS) == set(SETTINGS_MODELS) - {Settings}, (
        "list the registries' settings models in PLUGIN_SETTINGS (chatops_app/settings.py), and only those")


def test_the_models_yield_the_settings():
    assert len(SETTINGS) == len(BY_ENV), "two fields read the same environment name"
    assert BY_ENV["CHATOPS_QUEUE"].where == "Settings.queue_name"
    assert BY_ENV["CHATOPS_QUEUE"].default == "chatops"
    assert BY_ENV["SLACK_BOT_TOKEN"].default is None
    assert ALIAS_OF == {"SLACK_TEAM_ID": "SLACK_TEAM_IDS"}
    assert not set(LIBRARY_VARIABLES) & (set(BY_ENV) | set(ALIAS_OF)), "a library variable is a setting"


def test_configuration_md_documents_every_setting_and_only_those():
    problems = configuration_problems(CONFIGURATION.read_text())
    assert not problems, _report(problems)


def test_env_example_lists_every_setting_with_its_default():
    problems = env_example_problems(ENV_EXAMPLE.read_text(), COMPOSE.read_text())
    assert not problems, _report(problems)


def _k8s_texts() -> dict[str, str]:
    return {path.name: path.read_text() for path in K8S.glob("*.yaml")}


def test_compose_and_kubernetes_set_only_settings():
    problems = deployment_problems(COMPOSE.read_text(), _k8s_texts())
    assert not problems, _report(problems)


# -- the checks fail on edited copies ---------------------------------------------------------------


def _new(problems: list[str], baseline: list[str]) -> list[str]:
    """The problems an edit brought (the real files' own, if any, are the tests above's; an edit
    may move them to other line numbers)."""
    def unnumbered(problem: str) -> str:
        return re.sub(r" line \d+:", ":", problem)
    known = {unnumbered(p) for p in baseline}
    return [p for p in problems if unnumbered(p) not in known]


def _without_line(text: str, needle: str) -> str:
    lines = text.splitlines()
    hits = [line for line in lines if needle in line]
    assert len(hits) == 1, f"{needle!r} on {len(hits)} lines"
    return "\n".join(line for line in lines if needle not in line)


def test_a_setting_left_out_of_configuration_md_is_named():
    original = CONFIGURATION.read_text()
    text = _without_line(original, "`CHATOPS_QUEUE`")
    assert _new(configuration_problems(text), configuration_problems(original)) == [
        ("docs/configuration.md: add a table row for `CHATOPS_QUEUE` (chatops), read by Settings.queue_name, "
        "with a one-line meaning")]


def test_configuration_md_wrong_default_alias_typo_and_duplicate_are_named():
    original = text = CONFIGURATION.read_text()
    assert "`CHATOPS_CACHE_TTL` (3600)" in text and "`SLACK_TEAM_IDS`" in text
    text = text.replace("`CHATOPS_CACHE_TTL` (3600)", "`CHATOPS_CACHE_TTL` (60)")
    text = text.replace("`SLACK_TEAM_IDS`", "`SLACK_TEAM_ID`", 1)
    text += "\n| `CHATOPS_TOPK` (6), `CHATOPS_LOG_LEVEL` (`INFO`), `REQUESTS_CA_BUNDLE` | typo, twice, library |\n"
    problems = _new(configuration_problems(text), configuration_problems(original))
    assert any("`CHATOPS_CACHE_TTL` shows default (60) but Settings.cache_ttl defaults to 3600" in p for p in problems)
    assert any("`SLACK_TEAM_ID` is an alias of `SLACK_TEAM_IDS`" in p for p in problems)
    assert any("add a table row for `SLACK_TEAM_IDS`" in p for p in problems)
    assert any("`CHATOPS_TOPK` is read by no settings model" in p for p in problems)
    assert any("`CHATOPS_LOG_LEVEL` is in the first column of lines" in p for p in problems)
    assert any("`REQUESTS_CA_BUNDLE` is a library's variable, not a setting" in p for p in problems)
    assert len(problems) == 6, _report(problems)


def test_configuration_md_default_missing_or_invented_is_named():
    setting = Setting("CHATOPS_X_SECONDS", (), "Model.x", float, 1.5)
    unset = Setting("CHATOPS_Y_URL", (), "Model.y", str | None, None)
    assert configuration_problems("| `CHATOPS_X_SECONDS` (1.5 s), `CHATOPS_Y_URL` | ok |", [setting, unset]) == []
    assert configuration_problems("| `CHATOPS_X_SECONDS`, `CHATOPS_Y_URL` (`x`) | bad |", [setting, unset]) == [
        "docs/configuration.md line 1: `CHATOPS_X_SECONDS` defaults to 1.5 (Model.x): write `CHATOPS_X_SECONDS` (1.5)",
        ("docs/configuration.md line 1: `CHATOPS_Y_URL` shows a default (`x`) but Model.y has none: remove the "
        "parentheses and describe what unset means in the meaning column")]


def test_a_setting_left_out_of_env_example_is_named():
    original = ENV_EXAMPLE.read_text()
    text = _without_line(original, "CHATOPS_KEY_PREFIX=")
    baseline = env_example_problems(original, COMPOSE.read_text())
    assert _new(env_example_problems(text, COMPOSE.read_text()), baseline) == [
        ("deploy/.env.example: add `# CHATOPS_KEY_PREFIX=chatops` with a comment, in its section "
        "(read by Settings.key_prefix)")]


def test_env_example_wrong_default_typo_alias_and_uncommented_default_are_named():
    original = text = ENV_EXAMPLE.read_text()
    assert "# CHATOPS_TOP_K=6\n" in text and "# CHATOPS_LOG_LEVEL=INFO\n" in text
    text = text.replace("# CHATOPS_TOP_K=6\n", "# CHATOPS_TOP_K=8\n").replace(
        "# CHATOPS_LOG_LEVEL=INFO\n", "CHATOPS_LOG_LEVEL=INFO\n")
    text += ("# CHATOPS_TOPK_BOOST=2\n# SLACK_TEAM_ID=T1\n# Set CHATOPS_LOG_LEVL for more.\n"
             "# REQUESTS_CA_BUNDLE=/ca.pem\n")
    problems = _new(env_example_problems(text, COMPOSE.read_text()),
                    env_example_problems(original, COMPOSE.read_text()))
    assert any("`CHATOPS_TOP_K=8` but Settings.top_k defaults to 6" in p for p in problems)
    assert any("`CHATOPS_LOG_LEVEL` has a default (INFO, Settings.log_level): comment the line out" in p
               for p in problems)
    assert any("`CHATOPS_TOPK_BOOST` is read by no settings model nor deploy/compose.yml" in p for p in problems)
    assert any("`SLACK_TEAM_ID` is an alias of `SLACK_TEAM_IDS`" in p for p in problems)
    assert any("the comment names `CHATOPS_LOG_LEVL`, which nothing reads" in p for p in problems)
    assert any("`REQUESTS_CA_BUNDLE` is a library's variable, not a setting" in p for p in problems)
    assert len(problems) == 6, _report(problems)


def test_env_example_follows_compose_variables():
    compose_text = "services: {web: {ports: ['${CHATOPS_HTTP_PORT:-3000}:3000'], image: 'x:${TAG:-latest}'}}"
    assert env_example_problems("# CHATOPS_HTTP_PORT=3000\n# TAG=latest\n", compose_text, []) == []
    assert env_example_problems("# CHATOPS_HTTP_PORT=8080\n", compose_text, []) == [
        ("deploy/.env.example line 1: `CHATOPS_HTTP_PORT=8080` but compose.yml's default is 3000: "
        "write `# CHATOPS_HTTP_PORT=3000`"),
        "deploy/.env.example: add `# TAG=latest` to the compose-only section (deploy/compose.yml interpolates it)"]


@pytest.mark.parametrize("value, shown", [(Path(".data"), ".data"), (True, "true"), (86400.0, "86400"),
                                          ("directory", "directory"), (1_048_576, "1048576")])
def test_defaults_compare_by_the_fields_type(value, shown):
    setting = Setting("X_Y", (), "Model.x", type(value), value)
    assert setting.shows_default(shown)
    assert not setting.shows_default("2")


def test_a_misspelt_name_in_compose_or_kubernetes_is_named():
    compose_text, k8s = COMPOSE.read_text(), _k8s_texts()
    baseline = deployment_problems(compose_text, k8s)
    assert "      CHATOPS_WORKER_HEALTH_PORT: \"8081\"" in compose_text
    assert "  CHATOPS_LOG_LEVEL: INFO" in k8s["config.yaml"] and "# SLACK_APP_ID: " in k8s["config.yaml"]
    compose_text = compose_text.replace("CHATOPS_WORKER_HEALTH_PORT: \"8081\"", "CHATOPS_HEALTH_PORT: \"8081\"")
    k8s["config.yaml"] = (k8s["config.yaml"].replace("  CHATOPS_LOG_LEVEL: INFO", "  CHATOPS_LOGLEVEL_NAME: INFO")
                          .replace("# SLACK_APP_ID: ", "# SLACK_APPID_X: "))
    problems = _new(deployment_problems(compose_text, k8s), baseline)
    assert any(p.startswith("deploy/compose.yml service worker: the chatops containers get `CHATOPS_HEALTH_PORT`")
               for p in problems)
    assert any(p.startswith("deploy/compose.yml line ") and "`CHATOPS_HEALTH_PORT`" in p for p in problems)
    assert any(p.startswith("deploy/k8s ConfigMap chatops-env: the chatops containers get `CHATOPS_LOGLEVEL_NAME`")
               for p in problems)
    assert any(p.startswith("deploy/k8s/config.yaml line ") and "`CHATOPS_LOGLEVEL_NAME`" in p for p in problems)
    assert any(p.startswith("deploy/k8s/config.yaml line ") and "`SLACK_APPID_X`" in p for p in problems)
    assert len(problems) == 5, _report(problems)


def test_deployment_names_are_checked():
    settings_or_library = set(BY_ENV) | set(LIBRARY_VARIABLES)
    assert _given_names("p", ["CHATOPS_LOG_LEVEL", "PROMETHEUS_MULTIPROC_DIR"], settings_or_library) == []
    assert _given_names("p", ["CHATOPS_LOG_LEVL", "SLACK_TEAM_ID"], set(BY_ENV)) == [
        ("p: the chatops containers get `CHATOPS_LOG_LEVL`, which no settings model reads: "
         "correct the name or remove it"),
        "p: `SLACK_TEAM_ID` is an alias of `SLACK_TEAM_IDS`: set `SLACK_TEAM_IDS`"]
    assert _names_in_text("p", "a: 1\n  # CHATOPS_PUBLIK_URL: https://x\n", set(BY_ENV)) == [
        "p line 2: `CHATOPS_PUBLIK_URL` is read by no settings model: correct the name or remove it"]
    assert _environment_names(["A_B=1", "C_D"]) == ["A_B", "C_D"]
    assert _environment_names({"A_B": "1"}) == ["A_B"]
