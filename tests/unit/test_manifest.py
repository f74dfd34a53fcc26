"""manifest.yml matches the code: every Slack Web API method the code calls and every event it
listens to is in bot/scopes.py with the scopes Slack requires for it; the manifest asks for those
scopes and subscribes to those events, and for nothing else.

The calls and the listeners are found by reading the code (an AST scan), so a new call or listener
fails here until the table and the manifest say what it needs: otherwise Slack answers
``missing_scope`` in a real workspace, while the stand-in Slack of the other tests checks no scopes.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import slack_sdk.web.client
import yaml

from bot import scopes
from bot.scopes import APP, BOT, EVENTS, EXTRA, METHODS, Missing, listener_type, missing_scopes

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chatops", "connectors", "usecases", "bot", "workers", "console", "chatops_app")
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())


# -- what the code calls ------------------------------------------------------------------------

def web_client_methods() -> dict[str, frozenset[str]]:
    """WebClient's snake_case methods -> the Web API methods each calls (``chat_postMessage`` ->
    ``chat.postMessage``), read from slack_sdk's source: each ends in ``self.api_call("...")``, a few
    (``files_upload_v2``) call other methods of the client. Empty: it calls the API some other way."""
    tree = ast.parse(inspect.getsource(slack_sdk.web.client))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "WebClient")
    direct: dict[str, set[str]] = {}
    via: dict[str, set[str]] = {}
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_"):
            continue
        direct[fn.name], via[fn.name] = set(), set()
        for node in ast.walk(fn):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "api_call"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                direct[fn.name].add(node.args[0].value)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                via[fn.name].add(node.attr)
    return {name: frozenset(direct[name] or {m for other in via[name] for m in direct.get(other, ())})
            for name in direct}


WEB_CLIENT = web_client_methods()
UNKNOWN = "?"      # a call whose Web API method cannot be told from the code


def slack_calls(source: str, where: str = "<source>") -> dict[str, list[str]]:
    """The Web API methods ``source`` calls -> where: a WebClient method used on any object
    (``client.views_open(...)``, ``context.client.chat_postEphemeral(...)``, or passed on uncalled
    as ``self.client.chat_postMessage``; one that calls through a helper object, ``chat_stream``, as
    scopes.BY_HELPER says), ``.api_call("method")``, Bolt's listener utilities (``say(...)``,
    ``say_stream(...)``, ``set_status(...)``: scopes.BY_UTILITY), and the library classes that call
    methods themselves (scopes.BY_LIBRARY)."""
    tree = ast.parse(source)
    from_slack = {alias.asname or alias.name: alias.name for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom)
                  and (node.module or "").split(".")[0] in ("slack_bolt", "slack_sdk")
                  for alias in node.names}
    found: dict[str, list[str]] = {}

    def add(method: str, node: ast.AST) -> None:
        found.setdefault(method, []).append(f"{where}:{node.lineno}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in WEB_CLIENT:
            for method in WEB_CLIENT[node.attr] or scopes.BY_HELPER.get(node.attr) or {f"{UNKNOWN}WebClient.{node.attr}"}:
                add(method, node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "api_call":
            first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "api_method"), None)
            add(first.value if isinstance(first, ast.Constant) else f"{UNKNOWN}api_call", node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            for method in scopes.BY_UTILITY.get(node.func.id, ()):
                add(method, node)
            for method in scopes.BY_LIBRARY.get(from_slack.get(node.func.id, ""), ()):
                add(method, node)
    return found


def code_calls() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for method, where in slack_calls(path.read_text(), path.relative_to(ROOT).as_posix()).items():
                found.setdefault(method, []).extend(where)
    return found


# -- what the code listens to -------------------------------------------------------------------

_CHANNEL_TYPES = {"im": "message.im", "channel": "message.channels", "group": "message.groups", "mpim": "message.mpim"}
INTERACTIVE = "interactivity"   # a block action, modal, shortcut or options listener


def bolt_listeners(source: str) -> set[str]:
    """What Bolt listeners ``source`` registers (as a decorator or ``app.event(...)(fn)``): event
    types (``@app.event("app_mention")``, ``@app.message(...)`` -> ``message``, or with a channel
    type, ``{"type": "message", "channel_type": "im"}`` -> ``message.im``), and INTERACTIVE."""
    tree = ast.parse(source)
    registrations = [d for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                     for d in node.decorator_list]
    registrations += [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    out: set[str] = set()
    for reg in registrations:
        if not (isinstance(reg, ast.Call) and isinstance(reg.func, ast.Attribute)):
            continue
        kind, arg = reg.func.attr, reg.args[0] if reg.args else None
        if kind == "message":
            out.add("message")
        elif kind in ("action", "block_action", "view", "view_submission", "view_closed", "shortcut",
                      "global_shortcut", "message_shortcut", "options", "block_suggestion"):
            out.add(INTERACTIVE)
        elif kind == "event" and isinstance(arg, ast.Constant):
            out.add(arg.value)
        elif kind == "event" and isinstance(arg, ast.Dict):
            spec = {k.value: v.value for k, v in zip(arg.keys, arg.values)
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}
            out.add(_CHANNEL_TYPES.get(spec.get("channel_type"), spec.get("type", UNKNOWN + "event")))
        elif kind == "event":
            out.add(UNKNOWN + "event")
    return out


def code_listeners() -> set[str]:
    """Bolt lives in bot/ (the Slack front end); elsewhere ``.command`` is click's."""
    return {name for path in sorted((ROOT / "bot").rglob("*.py")) for name in bolt_listeners(path.read_text())}


# -- the check ----------------------------------------------------------------------------------

def manifest_problems(manifest: dict, calls: dict[str, list[str]], listened: set[str]) -> list[str]:
    problems = []
    for method in sorted(set(calls) - set(METHODS)):
        problems.append(f"{method} is called ({', '.join(calls[method])}) but is not in bot/scopes.py METHODS")
    for method in sorted(set(METHODS) - set(calls)):
        problems.append(f"bot/scopes.py METHODS lists {method}, which the code never calls")

    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"] or ())
    for event in sorted(subscribed - set(EVENTS)):
        problems.append(f"manifest.yml subscribes to {event}, which is not in bot/scopes.py EVENTS")
    for event in sorted(set(EVENTS) - subscribed):
        problems.append(f"bot/scopes.py EVENTS lists {event}, which manifest.yml does not subscribe to")
    for event in sorted(subscribed):
        if event not in listened and listener_type(event) not in listened:
            problems.append(f"manifest.yml subscribes to {event} but no listener handles it")
    for name in sorted(listened - {INTERACTIVE}):
        if not any(name in (event, listener_type(event)) for event in subscribed):
            problems.append(f"a listener handles {name} but manifest.yml subscribes to no event for it")
    if INTERACTIVE in listened and not (manifest["settings"].get("interactivity") or {}).get("is_enabled"):
        problems.append("listeners handle buttons or modals but manifest.yml disables interactivity")

    needed: dict[str, set[str]] = {}
    for name, need in [*((m, METHODS[m]) for m in calls if m in METHODS),
                       *((e, EVENTS[e]) for e in subscribed if e in EVENTS)]:
        for scope in need.scopes if need.token == BOT else ():
            needed.setdefault(scope, set()).add(name)
    granted = set(manifest["oauth_config"]["scopes"]["bot"] or ())
    for scope in sorted(set(needed) - granted):
        problems.append(f"manifest.yml lacks the bot scope {scope} (for {', '.join(sorted(needed[scope]))})")
    for scope in sorted(granted - set(needed) - set(EXTRA)):
        problems.append(f"manifest.yml asks for {scope}, which nothing needs: remove it, or say why in "
                        "bot/scopes.py EXTRA")
    return problems


# -- the tests ----------------------------------------------------------------------------------

def test_the_manifest_matches_the_code():
    assert manifest_problems(MANIFEST, code_calls(), code_listeners()) == []


def test_the_scan_finds_the_known_calls_and_listeners():
    calls = code_calls()
    assert "bot/gateway.py" in " ".join(calls["usergroups.users.list"])
    assert any(w.startswith("bot/questions/listener.py") for w in calls["chat.postEphemeral"])
    assert any(w.startswith("bot/feedback/listener.py") for w in calls["views.open"])
    assert any(w.startswith("bot/app.py") for w in calls["auth.test"])                 # slack_bolt.App
    assert any(w.startswith("bot/socket_mode.py") for w in calls["apps.connections.open"])
    assert {"app_mention", "message", "member_joined_channel", INTERACTIVE} <= code_listeners()


def test_web_client_methods_map_to_api_methods():
    assert WEB_CLIENT["chat_postMessage"] == {"chat.postMessage"}
    assert WEB_CLIENT["usergroups_users_list"] == {"usergroups.users.list"}
    assert WEB_CLIENT["files_upload_v2"] == {"files.getUploadURLExternal", "files.completeUploadExternal"}
    assert WEB_CLIENT["chat_stream"] == frozenset()        # calls the API through a helper object: unknown
    assert len(WEB_CLIENT) > 300


NEW_CALLS = '''
from slack_bolt import App as Bolt
from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler
from usecases import App                             # not Slack's

def post(self, context, client, say):
    fn = self.client.chat_delete                     # passed on, not called here
    context.client.reactions_add(channel="C1", name="eyes", timestamp="1.2")
    client.api_call("pins.add", json={})
    client.api_call(method_name)
    client.chat_stream(channel="C1")
    say("hi")
    set_status(status="thinking")                    # Bolt's listener utilities
    stream = say_stream()
    self._index.delete(points=[])                    # not a WebClient method: not Slack
    Bolt(token="xoxb")                               # slack_bolt.App: auth.test
    SocketModeHandler(app, "xapp").start()
    App()
'''


def test_a_new_call_is_found_and_fails_until_the_table_has_it():
    calls = slack_calls(NEW_CALLS, "new.py")
    assert set(calls) == {"chat.delete", "reactions.add", "pins.add", f"{UNKNOWN}api_call",
                          "chat.startStream", "chat.appendStream", "chat.stopStream", "chat.postMessage",
                          "assistant.threads.setStatus", "auth.test", "apps.connections.open"}
    assert calls["reactions.add"] == ["new.py:8"]
    assert sorted(calls["chat.appendStream"]) == ["new.py:11", "new.py:14"]   # chat_stream, say_stream
    assert calls["assistant.threads.setStatus"] == ["new.py:13"]
    problems = manifest_problems(MANIFEST, {**code_calls(), **calls}, code_listeners())
    for method in ("chat.delete", "reactions.add", "pins.add", f"{UNKNOWN}api_call"):
        assert any(p.startswith(f"{method} is called") and "not in bot/scopes.py METHODS" in p for p in problems)
    assert not any(p.startswith("chat.postMessage") for p in problems)


def test_new_listeners_are_found():
    source = '''
def register(app):
    @app.event({"type": "message", "channel_type": "mpim"})
    def a(event): ...
    app.event("reaction_added")(lambda event: None)
    @app.shortcut("x")
    def b(ack): ...
    outcome.message()                                # not a registration
'''
    assert bolt_listeners(source) == {"message.mpim", "reaction_added", INTERACTIVE}


def _manifest(drop_scopes=(), add_scopes=(), drop_events=(), add_events=(), interactivity=True) -> dict:
    bot = [s for s in MANIFEST["oauth_config"]["scopes"]["bot"] if s not in drop_scopes] + list(add_scopes)
    events = [e for e in MANIFEST["settings"]["event_subscriptions"]["bot_events"] if e not in drop_events]
    return {"oauth_config": {"scopes": {"bot": bot}},
            "settings": {"event_subscriptions": {"bot_events": events + list(add_events)},
                         "interactivity": {"is_enabled": interactivity}}}


@pytest.mark.parametrize("scope, needed_by", [
    ("usergroups:read", "usergroups.users.list"),
    ("chat:write", "agent_session_stopped, assistant.threads.setStatus, chat.appendStream, chat.postEphemeral, "
                   "chat.postMessage, chat.startStream, chat.stopStream, chat.update"),
    ("users:read.email", "users.info"),
    ("groups:read", "conversations.info, conversations.members, member_joined_channel, member_left_channel"),
    ("im:history", "message.im"),
])
def test_a_missing_scope_fails(scope, needed_by):
    problems = manifest_problems(_manifest(drop_scopes=[scope]), code_calls(), code_listeners())
    assert problems == [f"manifest.yml lacks the bot scope {scope} (for {needed_by})"]


@pytest.mark.parametrize("scope", ["chat:write.public", "mpim:write", "im:read", "channels:manage"])
def test_a_scope_nothing_needs_fails(scope):
    problems = manifest_problems(_manifest(add_scopes=[scope]), code_calls(), code_listeners())
    assert problems == [(f"manifest.yml asks for {scope}, which nothing needs: remove it, or say why in "
                         "bot/scopes.py EXTRA")]


def test_events_must_match_the_listeners():
    listened = code_listeners()
    assert manifest_problems(_manifest(drop_events=["member_left_channel"]), code_calls(), listened) == [
        "bot/scopes.py EVENTS lists member_left_channel, which manifest.yml does not subscribe to",
        "a listener handles member_left_channel but manifest.yml subscribes to no event for it"]
    assert "manifest.yml subscribes to reaction_added but no listener handles it" in manifest_problems(
        _manifest(add_events=["reaction_added"]), code_calls(), listened)
    assert manifest_problems(_manifest(), code_calls(), listened | {"team_join"}) == [
        "a listener handles team_join but manifest.yml subscribes to no event for it"]
    assert manifest_problems(_manifest(interactivity=False), code_calls(), listened) == [
        "listeners handle buttons or modals but manifest.yml disables interactivity"]
    # no message listener: none of the four message.* subscriptions is handled
    assert len([p for p in manifest_problems(_manifest(), code_calls(), listened - {"message"})
                if "no listener handles" in p]) == 4


def test_the_table_is_well_formed():
    for name, need in [*METHODS.items(), *EVENTS.items()]:
        assert need.why, name
        assert need.token in (BOT, APP), name
        assert need.used_on <= set(need.any_of), name
        assert not (need.any_of and not need.used_on), f"{name}: any_of without the conversation types used"
    assert METHODS["views.open"].scopes == METHODS["auth.test"].scopes == frozenset()
    assert METHODS["conversations.members"].scopes == {"channels:read", "groups:read", "mpim:read"}
    assert METHODS["conversations.open"].scopes == {"im:write"}
    assert set(scopes.required(APP)) == {"connections:write"}
    assert listener_type("message.im") == "message" and listener_type("app_mention") == "app_mention"


def test_missing_scopes_names_what_needs_each():
    everything = set(scopes.required(BOT))
    assert missing_scopes(everything) == []
    assert missing_scopes(everything - {"usergroups:read", "users:read.email"}) == [
        Missing("usergroups:read", ("usergroups.users.list",)), Missing("users:read.email", ("users.info",))]
    assert str(missing_scopes(everything - {"im:write"})[0]) == "im:write (for conversations.open)"
    # an app-level token's scope is never asked of the bot token
    assert "connections:write" not in {m.scope for m in missing_scopes(set())}
    assert scopes.granted_scopes("chat:write, users:read,") == {"chat:write", "users:read"}
    assert scopes.granted_scopes(None) == set()
