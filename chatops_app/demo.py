"""``chatops demo``: the sample corpus, asked by different people.

Ingests ``demo/corpus`` (a fictional company, Northwind Logistics) into its own
embedded index under ``.data/demo``, with ``demo/directory.yml`` as the
identity directory, then asks the same questions as different people through
the real question pipeline and prints what each of them gets back. No Slack
workspace, identity tenant, API key or Qdrant server is needed; answers are
extractive unless ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from chatops import logs
from chatops.settings import Settings
from chatops_app import demo_actions
from chatops_app.container import Container
from chatops_app.settings import load_settings
from connectors.identity.base import UnknownUser
from connectors.identity.directory import DirectoryProvider
from connectors.llm.registry import provider_for
from connectors.llm.settings import LLMSettings
from connectors.sources.filesystem.connector import FilesystemSource
from usecases.ask import Question, Refusal
from usecases.ingest import ingest

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "demo"
CORPUS = DEMO_DIR / "corpus"
DIRECTORY = DEMO_DIR / "directory.yml"
DATA_DIR = REPO / ".data" / "demo"
INDEX_DIR = DATA_DIR / "index"
KEY_PREFIX = "chatops-demo"

UNKNOWN_VISITOR = "sam@contractor.example"
_BULLET = re.compile(r"([-*+]|\d+[.)])\s+")


@dataclass(frozen=True)
class Ask:
    email: str
    expect: str | None = None          # a document the answer should cite (relevance, a warning)
    forbid: str | None = None          # a path or folder prefix that must never be used (a failure)
    refused: bool = False              # the pipeline must refuse this person


@dataclass(frozen=True)
class Scenario:
    title: str
    question: str
    why: str
    asks: tuple[Ask, ...] = field(default_factory=tuple)


SCENARIOS = (
    Scenario(
        "An engineering runbook",
        "How do I restart the billing service?",
        "runbooks/** is visible to the engineering and sre groups only.",
        (Ask("ben@northwind.example", expect="runbooks/restart-billing-service.md"),
         Ask("ana@northwind.example", expect="runbooks/restart-billing-service.md"),
         Ask("carla@northwind.example", forbid="runbooks/")),
    ),
    Scenario(
        "An SRE-only runbook",
        "How do I get break-glass access to production?",
        "runbooks/production-access.md is narrowed to the sre group by a later rule "
        "(the last matching rule wins).",
        (Ask("ana@northwind.example", expect="runbooks/production-access.md"),
         Ask("ben@northwind.example", forbid="runbooks/production-access.md")),
    ),
    Scenario(
        "HR only, plus one named person",
        "What does a Lead Engineer (L4) earn?",
        "hr/** is visible to the hr group; hr/salary-bands.md also names the CEO "
        "(erik@northwind.example) under users:.",
        (Ask("carla@northwind.example", expect="hr/salary-bands.md"),
         Ask("erik@northwind.example", expect="hr/salary-bands.md"),
         Ask("ben@northwind.example", forbid="hr/")),
    ),
    Scenario(
        "A public handbook page",
        "How many vacation days do I get, and can I carry unused days over?",
        "handbook/** is public: everyone in the directory may see it. Someone who is not "
        "in the directory at all is refused outright.",
        (Ask("ben@northwind.example", expect="handbook/vacation-policy.md"),
         Ask("devika@northwind.example", expect="handbook/vacation-policy.md"),
         Ask(UNKNOWN_VISITOR, refused=True)),
    ),
)


def demo_settings(config: Path | None = None) -> Settings:
    """The environment, with everything that locates data pinned to the demo."""
    return load_settings(
        CHATOPS_DATA_DIR=str(DATA_DIR),
        QDRANT_PATH=str(INDEX_DIR),
        QDRANT_URL=None,
        QDRANT_API_KEY=None,
        CHATOPS_DIRECTORY_FILE=str(DIRECTORY),
        CHATOPS_IDENTITY_PROVIDER="directory",
        CHATOPS_KEY_PREFIX=KEY_PREFIX,
        SLACK_BOT_TOKEN=None,
        CHATOPS_CONFIG=str(config) if config else None,
    )


class _Printer:
    def __init__(self):
        self.width = max(60, min(100, shutil.get_terminal_size((100, 24)).columns))

    def line(self, text: str = "", indent: str = "") -> None:
        if not text.strip():
            print(indent.rstrip() if text == "" else indent + text.strip())
            return
        quote = ""
        body = text
        if body.startswith(">"):
            quote, body = "> ", body[1:].lstrip()
        lead = len(body) - len(body.lstrip())
        prefix = indent + quote + " " * lead
        if body.lstrip().startswith("|"):  # a Markdown table row: wrapping would break it
            print(prefix + body.strip())
            return
        bullet = _BULLET.match(body.lstrip())
        hang = " " * len(bullet.group(0)) if bullet else ""
        print(textwrap.fill(body.strip(), width=self.width, initial_indent=prefix,
                            subsequent_indent=prefix + hang,
                            break_long_words=False, break_on_hyphens=False))

    def block(self, text: str, indent: str = "") -> None:
        for raw in text.splitlines():
            self.line(raw, indent)

    def banner(self, title: str) -> None:
        print()
        print("=" * self.width)
        print(title)
        print("=" * self.width)

    def section(self, title: str) -> None:
        print()
        bar = f"── {title} "
        print(bar + "─" * max(3, self.width - len(bar)))


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is below it, absolute otherwise."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _command_name() -> str:
    found = shutil.which("chatops")
    argv0 = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found and argv0 and Path(found).resolve() == argv0:
        return "chatops"
    if argv0 and argv0.name == "chatops" and argv0.exists():
        return _shown(argv0)
    return "chatops"


def _who(directory, email: str) -> str:
    try:
        p = directory.by_email(email)
    except UnknownUser:
        return f"{email} (not in the directory)"
    groups = f"groups: {', '.join(sorted(p.groups))}" if p.groups else "no groups"
    return f"{p.display_name or p.email} <{p.email}>, {groups}"


def run_demo() -> None:
    receiver, actions_config = demo_actions.prepare(DATA_DIR, os.environ)
    settings = demo_settings(actions_config)
    # Keep the terminal for the demo's own output: only errors (for example a chunk the
    # index filter should have removed) are logged, unless debugging was asked for.
    debug = settings.log_level.upper() == "DEBUG"
    logs.setup("DEBUG" if debug else "ERROR", "text" if not debug else settings.log_format)

    out = _Printer()
    started = time.perf_counter()
    directory = DirectoryProvider.from_file(DIRECTORY)
    llm = provider_for(settings) is not None

    out.banner("chatops demo: Northwind Logistics")
    out.line(f"Corpus:    {_shown(CORPUS)} (permissions in {_shown(CORPUS / '.acl.yml')})")
    out.line(f"Directory: {_shown(DIRECTORY)}")
    aliases = settings.group_names.aliases
    out.line(f"Groups:    {', '.join(sorted(aliases))} — aliases in {_shown(actions_config)} for the "
             "groups' object ids; people and documents are matched by id, never by a display name")
    out.line(f"Index:     {_shown(INDEX_DIR)} (embedded; separate from your main index)")
    if llm:
        out.line(f"Answers:   generated by the language model {settings.of(LLMSettings).llm_model}, with citations")
    else:
        out.line("Answers:   extractive. No language model is configured (set OPENAI_API_KEY or "
                 "OPENAI_BASE_URL for written answers), so each answer quotes the most relevant "
                 "passages the asker may see, even when none of them really answers the question.")
    print()
    out.line("People in the directory:")
    for entry in (yaml.safe_load(DIRECTORY.read_text()) or {}).get("users") or []:
        out.line(_who(directory, entry["email"]), indent="  ")

    container = Container(settings)
    failures: list[str] = []
    warnings: list[str] = []
    try:
        out.section("Ingesting the corpus")
        source = FilesystemSource(CORPUS, groups=settings.group_names)
        report = ingest(source, container.index, container.embedder, progress=sys.stderr.isatty())
        out.line(report.summary())
        for rel in report.no_acl:
            out.line(f"hidden from everyone (no rule in .acl.yml matches it): {rel}", indent="  ")
        for rel, why in report.skipped:
            out.line(f"skipped {rel}: {why}", indent="  ")

        # Through the same use case as `chatops ask`: each question is recorded in the audit trail,
        # so the operator console (`make demo` prints its sign-in link) has something to show.
        answering = container.answering_without_slack()
        recorded_as = {"channel": "demo", "channel_type": "cli"}
        for n, scenario in enumerate(SCENARIOS, 1):
            out.section(f"{n}. {scenario.title}")
            out.line(f'Question: "{scenario.question}"')
            out.line(scenario.why)
            for ask in scenario.asks:
                print()
                out.line(f"▶ Asked by {_who(directory, ask.email)}")
                question = Question(text=scenario.question, asker_email=ask.email)
                try:
                    answer, timings = answering.ask(question)
                except Refusal as refusal:
                    answering.record(question, None, **recorded_as)
                    out.line(f"Refused: {refusal}", indent="    ")
                    if ask.refused:
                        out.line("✓ refused, as expected: unknown people get nothing, not even "
                                 "public pages", indent="    ")
                    else:
                        failures.append(f"{ask.email} was refused: {scenario.question}")
                        out.line("✗ UNEXPECTED refusal", indent="    ")
                    continue
                answering.record(question, answer, stages=timings.stages(), answer_id=secrets.token_hex(8),
                                 **recorded_as)
                if ask.refused:
                    failures.append(f"{ask.email} should have been refused: {scenario.question}")
                standard_note = answer.mode == "extractive" and not llm
                if answer.note and not standard_note:
                    out.line(f"({answer.note})", indent="    ")
                out.block(answer.text, indent="    ")
                if answer.citations:
                    out.line("Sources:", indent="    ")
                    for c in answer.citations:
                        where = c.url or c.source
                        out.line(f"[{c.n}] {c.title} — {where}", indent="      ")
                _check(out, ask, answer, failures, warnings)

        out.section(f"{len(SCENARIOS) + 1}. An action that needs a person's approval")
        demo_actions.run(out, container, receiver, failures)
    finally:
        container.close()
        receiver.stop()

    out.section("Summary")
    total = sum(len(s.asks) for s in SCENARIOS)
    if failures:
        out.line(f"✗ {len(failures)} of {total} permission checks FAILED:")
        for f in failures:
            out.line(f"- {f}", indent="  ")
    else:
        out.line(f"✓ All {total} permission checks passed: nobody was shown a document they may not see; "
                 "the action ran once, after an allowed person's approval.")
    for w in warnings:
        out.line(f"! {w}")
    out.line(f"Finished in {time.perf_counter() - started:.1f} s.")
    print()
    env = {
        "CHATOPS_DATA_DIR": _shown(DATA_DIR),
        "QDRANT_PATH": _shown(INDEX_DIR),
        "CHATOPS_DIRECTORY_FILE": _shown(DIRECTORY),
        "CHATOPS_KEY_PREFIX": KEY_PREFIX,
        "CHATOPS_CONFIG": _shown(DATA_DIR / "groups.yml"),
    }
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    print("Ask your own question against the demo index as anyone in demo/directory.yml:")
    print(f"  {assignments} {_command_name()} ask \"How do I set up the VPN?\" --as ben@northwind.example")
    if failures:
        sys.exit(1)


def _check(out: _Printer, ask: Ask, answer, failures: list[str], warnings: list[str]) -> None:
    cited = [c.source for c in answer.citations]
    used = set(cited) | set(answer.considered)
    if ask.forbid:
        leaked = sorted(d for d in used if d == ask.forbid or d.startswith(ask.forbid))
        if leaked:
            failures.append(f"{ask.email} was given {', '.join(leaked)}")
            out.line(f"✗ LEAK: {', '.join(leaked)} was used for {ask.email}", indent="    ")
        else:
            out.line(f"✓ nothing from {ask.forbid} was used: this person may not see it", indent="    ")
    if ask.expect:
        if ask.expect in cited:
            out.line(f"✓ cites {ask.expect}", indent="    ")
        else:
            warnings.append(f"{ask.email} did not get {ask.expect} cited (retrieval chose "
                            f"{', '.join(cited) or 'nothing'})")
            out.line(f"! {ask.expect} was not cited (retrieval chose other documents)", indent="    ")


if __name__ == "__main__":  # pragma: no cover
    run_demo()
