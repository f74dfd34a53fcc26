"""Live Jira search end to end (issue 21): signed Slack events in, the worker process runs the
``tickets-live`` tool (kind ``jira_search``) through the configured Jira source's account, and each
issue reaches the model, and so the answer, only if every reader of the answer may see it.

The Jira site is the stand-in (standins/fake_jira.py) over TLS from a throwaway CA that the
processes trust through REQUESTS_CA_BUNDLE. Project OPS may be browsed by the group ``staff``
(Ana and Ben); its security level "Security" admits the group ``security-team`` (Ben alone). The
service account sees every issue, so Jira returns both; the filtering is ours. The source is
synced first (``chatops sources sync tickets --full``) so that people's Atlassian groups are known,
and the operator approves the tool with ``chatops tools approve``.

The model is the scripted OpenAI stand-in: it calls ``tickets-live__search`` once, then repeats
every line of every tool result it was given, so what Slack shows is exactly what the model got.
"""

from __future__ import annotations

import json
import re
import ssl

import pytest
import requests
import trustme

from chatops.store import Store
from chatops.store.tools import ToolRecords
from standins.fake_jira import FakeJira
from tests.integration.harness import BOT, System, new_ts, text_of

pytestmark = pytest.mark.redis

ANA, BEN = "UANA", "UBEN"            # Ana: staff; Ben: staff and security-team
TOKEN_ENV = "E2E_TICKETS_JIRA_TOKEN"
SEARCH = "tickets-live__search"
JQL = "project = OPS ORDER BY key ASC"
OPEN_SUMMARY = "VPN gateway certificate renewal"
SECRET_SUMMARY = "Pen-test findings: VPN admin panel exposed"

CORPUS = {
    ".acl.yml": '- match: "**"\n  groups: [engineering]\n',
    "runbooks/tickets.md": "# Tickets\n\nOperations tickets live in the Jira project OPS; ask the bot to search "
                           "them live.\n",
}
DIRECTORY = f"""
users:
  - {{email: ana@corp.example, slack_id: {ANA}, groups: [engineering], id: 0a0a0a0a-0000-4000-8000-00000000000a}}
  - {{email: ben@corp.example, slack_id: {BEN}, groups: [engineering], id: 0b0b0b0b-0000-4000-8000-00000000000b}}
"""


# -- the scripted model -------------------------------------------------------------------------

_RESULT = re.compile(r'<tool_result n="(\d+)"[^>]*>\n(.*?)\n</tool_result>', re.DOTALL)


def model(request: dict):
    """First request (no tool result yet, the search offered): search OPS. Then: every line of
    every tool result, each cited with the result's number."""
    messages = request["messages"]
    offered = {t["function"]["name"] for t in request.get("tools") or []}
    if not any(m["role"] == "tool" for m in messages):
        if SEARCH in offered:
            return {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": SEARCH, "arguments": json.dumps({"jql": JQL})}}]}
        return "I could not search Jira live."
    results = [(n, body) for m in messages if m["role"] == "tool" for n, body in _RESULT.findall(m["content"])]
    lines = [f"{line.strip()} [{n}]" for n, body in results for line in body.splitlines() if line.strip()]
    return "\n".join(lines) or "The search gave nothing."


# -- the system ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jira(tmp_path_factory):
    """The Jira site over TLS; yields (the stand-in, the CA bundle the processes trust, the keys)."""
    folder = tmp_path_factory.mktemp("jira-tls")
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    site = FakeJira(projects=())
    site.tls = context
    with site:
        site.add_user("acc-ana", "ana@corp.example", name="Ana Lima")
        site.add_user("acc-ben", "ben@corp.example", name="Ben Okafor")
        staff = site.add_group("staff")
        site.set_members(staff, ["acc-ana", "acc-ben"])
        security = site.add_group("security-team")
        site.set_members(security, ["acc-ben"])
        site.add_project("OPS", "Operations", browse=[("group", staff)],
                         security_levels={"Security": [("group", security)]})
        keys = {"open": site.add_issue("OPS", OPEN_SUMMARY, "Renew before Friday.", assignee="acc-ana"),
                "secret": site.add_issue("OPS", SECRET_SUMMARY, "The admin panel answers on the internet.",
                                         security="Security")}
        yield site, bundle, keys


@pytest.fixture(scope="module")
def system(tmp_path_factory, jira):
    site, bundle, _keys = jira
    root = tmp_path_factory.mktemp("e2e-jira-search")
    (root / "config.yml").write_text(f"""
sources:
  - name: tickets
    kind: jira
    url: {site.origin}
    email: {site.email}
    token_env: {TOKEN_ENV}
    projects: [OPS]
tools:
  - name: tickets-live
    kind: jira_search
    title: Jira
    source: tickets
""")
    # The web app (in this process) checks at start-up that the source's token is in the environment.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TOKEN_ENV, site.token)
        s = System.start(
            root, corpus=CORPUS, directory=DIRECTORY, reply=model,
            users={ANA: {"id": ANA, "profile": {"email": "ana@corp.example"}},
                   BEN: {"id": BEN, "profile": {"email": "ben@corp.example"}},
                   BOT: {"id": BOT, "is_bot": True}},
            channels={"COPS": [ANA, BEN, BOT]},
            extra_env={"CHATOPS_CONFIG": str(root / "config.yml"), "REQUESTS_CA_BUNDLE": str(bundle)},
        )
        try:
            # The worker holds the embedded index: the one-process sync runs while it is stopped.
            s.stop_worker()
            done = s.cli("sources", "sync", "tickets", "--full")
            assert done.returncode == 0, done.stdout + done.stderr
            assert "synced tickets (full)" in done.stdout and "2 added" in done.stdout, done.stdout
            done = s.cli("tools", "approve", "tickets-live", "--by", "e2e-operator")
            assert done.returncode == 0, done.stderr
            s.start_worker()
            yield s
        finally:
            s.stop()


@pytest.fixture(scope="module")
def records(system):
    store = Store.for_url(f"sqlite:///{system.root / 'data' / 'chatops.db'}")
    yield ToolRecords(store)
    store.close()


def shown_in(system, channel: str, since: int) -> list[str]:
    """Everything Slack was asked to show in ``channel`` since call ``since``."""
    return [text_of(c["params"]) + json.dumps(c["params"].get("attachments") or [])
            + (c["params"].get("markdown_text") or "") + json.dumps(c["params"].get("chunks") or [])
            for c in list(system.slack.calls)[since:]
            if c["method"] in ("chat.postMessage", "chat.update", "chat.postEphemeral", "chat.startStream",
                               "chat.appendStream", "chat.stopStream", "assistant.threads.setStatus")
            and (c["params"].get("channel") or c["params"].get("channel_id")) == channel]


def model_requests_about(system, phrase: str) -> list[dict]:
    return [r for r in system.llm.requests if phrase in json.dumps(r["messages"])]


def searches(site: FakeJira) -> list[str]:
    """The JQL of every POST search the site answered (the tool's; the sync's ran before)."""
    return [r.json()["jql"] for r in list(site.requests) if r.method == "POST" and r.path == "/rest/api/3/search/jql"]


# -- the scenarios ------------------------------------------------------------------------------


def test_live_jira_search_in_a_channel_shows_only_issues_every_member_may_see(system, jira, records):
    site, bundle, keys = jira
    before = len(searches(site))
    # Ben may see both issues, but Ana, in the channel too, may not see the restricted one.
    event = system.mention("COPS", BEN, "which OPS tickets are open, asked in the channel?")
    since = len(system.slack.calls)
    assert system.post_event(event).status_code == 200
    text = text_of(system.answer_in("COPS", since))
    assert keys["open"] in text and OPEN_SUMMARY in text, text
    # (the Sources line links the search when its host is allowed: "[1] <url|Jira · search(…)>")
    assert re.search(r"\[1\] (?:<[^|>]+\|)?\*?Jira · search\(jql=project = OPS ORDER BY key ASC\) · \d\d:\d\d UTC",
                     text), text
    # Jira was asked within the source's scope and returned both issues: the filtering is ours
    jql = searches(site)[before:]
    assert jql == ["(project = OPS) AND project in (OPS) ORDER BY key ASC"], jql
    answered = requests.post(f"{site.origin}/rest/api/3/search/jql", auth=(site.email, site.token), verify=str(bundle),
                             json={"jql": jql[0], "fields": ["summary"]}, timeout=10).json()
    assert [i["key"] for i in answered["issues"]] == [keys["open"], keys["secret"]]
    # nothing Slack was asked to show in the channel names the restricted issue
    shown = shown_in(system, "COPS", since)
    assert shown and not any(keys["secret"] in s or "Pen-test" in s for s in shown), shown
    # nor did the model ever read it: it was dropped before the result went back to the model
    asked = model_requests_about(system, "asked in the channel")
    assert len(asked) == 2 and asked[0].get("tools") and any(m["role"] == "tool" for m in asked[1]["messages"])
    assert not any(keys["secret"] in json.dumps(r) or "Pen-test" in json.dumps(r) for r in asked)
    assert OPEN_SUMMARY in json.dumps(asked[1]["messages"])
    row = next(r for r in records.calls() if r.person_email == "ben@corp.example")
    assert (row.tool, row.function, row.outcome, row.arguments) == ("tickets-live", "search", "ok", {"jql": JQL})


def test_the_same_search_in_a_security_members_dm_shows_the_restricted_issue(system, jira):
    site, _bundle, keys = jira
    channel = f"D{BEN}"
    since = len(system.slack.calls)
    assert system.post_event({"type": "message", "channel": channel, "channel_type": "im", "user": BEN,
                              "text": "which OPS tickets are open, asked in a DM?", "ts": new_ts()}).status_code == 200
    text = text_of(system.answer_in(channel, since))
    assert keys["open"] in text and OPEN_SUMMARY in text, text
    assert keys["secret"] in text and SECRET_SUMMARY in text, text
    [first, second] = model_requests_about(system, "asked in a DM")
    assert SECRET_SUMMARY in json.dumps(second["messages"])


def test_a_member_outside_the_security_group_never_gets_the_restricted_issue_in_a_dm(system, jira):
    _site, _bundle, keys = jira
    channel = f"D{ANA}"
    since = len(system.slack.calls)
    assert system.post_event({"type": "message", "channel": channel, "channel_type": "im", "user": ANA,
                              "text": "which OPS tickets are open, Ana asking?", "ts": new_ts()}).status_code == 200
    text = text_of(system.answer_in(channel, since))
    assert keys["open"] in text and OPEN_SUMMARY in text, text
    assert not any(keys["secret"] in json.dumps(r) or "Pen-test" in json.dumps(r)
                   for r in model_requests_about(system, "Ana asking"))
    assert not any(keys["secret"] in s or "Pen-test" in s for s in shown_in(system, channel, since))
