"""The Confluence part of ``make demo``: a space synced with its page restrictions, a question
answered from a page restricted through its parent, the restriction lifted (no new version, no
modified time: only the permission pass sees it), and the answer after the next pass.

The Confluence Cloud stand-in (standins/fake_confluence.py) speaks the real REST API on
loopback; the real requests client talks to it through an adapter that sends
``https://northwind.atlassian.net`` there, and the real source framework, embedded index,
embedding model and question pipeline do the work.

Run from the repository root: ``PYTHONPATH=. .venv/bin/python demo/confluence.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import requests
import yaml

from chatops import logs
from chatops_app.container import Container
from chatops_app.settings import load_settings
from standins.fake_confluence import FakeConfluence
from standins.fake_entra import Reroute
from demo._common import asker, verdict

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / ".data" / "demo-confluence"
SITE = "https://northwind.atlassian.net"
QUESTION = "How are the on-call pay rates set?"
PAY = "On-call pay rates"


def _space(cf: FakeConfluence) -> str:
    for account, email in (("acc-ana", "ana@northwind.example"), ("acc-ben", "ben@northwind.example"),
                           ("acc-carla", "carla@northwind.example")):
        cf.add_user(account, email)
    staff, people_team = cf.add_group("northwind-staff"), cf.add_group("people-team")
    cf.set_members(staff, ["acc-ana", "acc-ben", "acc-carla"])
    cf.set_members(people_team, ["acc-carla"])
    cf.add_space("OPS", "Operations", read=[("group", staff)])
    cf.add_page("OPS", "Incident process", "<h2>Paging</h2><p>Page the on-call engineer through the pager; "
                "escalate to the vendor after thirty minutes.</p>")
    people = cf.add_page("OPS", "People matters", "<p>Compensation and rotas.</p>", read_groups=[people_team])
    cf.add_page("OPS", PAY, "<h2>Rates</h2><p>On-call pay rates are set each January by the People team: "
                "a weekly stipend plus time in lieu for every night page.</p>", parent=people)
    return people


def main() -> int:
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True)
    cf = FakeConfluence(email="svc-chatops@northwind.example", token="demo-token")
    cf.public_url = SITE
    (DATA_DIR / "chatops.yml").write_text(yaml.safe_dump({"sources": [
        {"name": "wiki", "kind": "confluence", "url": f"{SITE}/wiki", "spaces": ["OPS"],
         "email": cf.email, "token_env": "DEMO_CONFLUENCE_TOKEN"}]}))
    os.environ["DEMO_CONFLUENCE_TOKEN"] = cf.token
    failures: list[str] = []
    with cf:
        people = _space(cf)
        session = requests.Session()
        session.mount(SITE + "/", Reroute(SITE, cf.origin))
        settings = load_settings(
            CHATOPS_DATA_DIR=str(DATA_DIR), QDRANT_PATH=str(DATA_DIR / "index"), QDRANT_URL=None,
            CHATOPS_CONFIG=str(DATA_DIR / "chatops.yml"), CHATOPS_IDENTITY_PROVIDER="directory",
            CHATOPS_DIRECTORY_FILE=str(REPO / "demo" / "directory.yml"), CHATOPS_KEY_PREFIX="chatops-demo-cf",
            SLACK_BOT_TOKEN=None)
        logs.setup("ERROR", "text")
        container = Container(settings, http_client=session)
        try:
            print("=" * 78)
            print("chatops demo: a Confluence space, with its page restrictions")
            print("=" * 78)
            print(f"Site:  {SITE}/wiki (a loopback stand-in for Confluence Cloud)")
            print("Space: OPS, readable by northwind-staff; 'People matters' restricted to the")
            print(f"       people-team group, and '{PAY}' below it (no restriction of its own)")
            print()
            print("$ chatops sources sync wiki")
            print(container.sync("wiki").run("changes").summary())
            pipeline = container.pipeline(with_slack=False)

            ask = asker(pipeline, QUESTION)

            print(f'\n"{QUESTION}"')
            print("▶ Carla (people-team):")
            if PAY not in ask("carla@northwind.example"):
                failures.append("Carla should get the pay rates page")
            print("▶ Ben (staff; the page's parent is restricted to people-team):")
            if PAY in ask("ben@northwind.example"):
                failures.append("Ben must not get a page restricted through its parent")

            print("\nIn Confluence, Carla lifts the restriction on 'People matters'.")
            cf.unrestrict(people)
            print("$ chatops sources sync wiki                 (a changes sync: no page was modified)")
            print(container.sync("wiki").run("changes").summary())
            print("$ chatops sources sync wiki --permissions   (what the scheduler runs every 15 minutes)")
            print(container.sync("wiki").run("permissions").summary())
            print(f'\n"{QUESTION}"')
            print("▶ Ben, again:")
            if PAY not in ask("ben@northwind.example"):
                failures.append("after the restriction is lifted, Ben should get the pay rates page")
        finally:
            container.close()
    return verdict(failures, "Confluence")


if __name__ == "__main__":
    sys.exit(main())
