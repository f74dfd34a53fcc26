"""Where the demo's data lives, the questions it asks, who asks them, and what each must (not) get."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chatops_app.demo.printer import Printer

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO / "demo"
CORPUS = DEMO_DIR / "corpus"
DIRECTORY = DEMO_DIR / "directory.yml"
DATA_DIR = REPO / ".data" / "demo"
INDEX_DIR = DATA_DIR / "index"
KEY_PREFIX = "chatops-demo"

UNKNOWN_VISITOR = "sam@contractor.example"


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


def check(out: Printer, ask: Ask, answer, failures: list[str], warnings: list[str]) -> None:
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
