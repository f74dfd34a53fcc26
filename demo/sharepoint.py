"""The SharePoint part of ``make demo``: a library synced with its permissions, a question
answered from it, a share revoked, and the same question no longer using that document
after the next sync.

Everything runs on loopback stand-ins that speak the real protocols (standins/: Entra's
token endpoint with a certificate, Graph's sites, drives, delta, content and permissions,
SharePoint's REST API for site groups); the real msal and requests talk to them, and the real
source framework, embedded index, embedding model and question pipeline do the work.

Run from the repository root: ``PYTHONPATH=. .venv/bin/python demo/sharepoint.py``.
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
from pathlib import Path

import docx
import yaml

from chatops import logs
from chatops_app.container import Container
from chatops_app.settings import load_settings
from standins.certificates import make_certificate
from standins.fake_entra import FakeEntra
from standins.fake_sharepoint import FakeSharePoint, site_group_perm, sp_user, user_perm
from demo._common import asker, verdict

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / ".data" / "demo-sharepoint"
SITE = "https://northwind.sharepoint.com/sites/operations"
QUESTION = "What caused the barcode scanner outage in November?"


def _word(title: str, paragraphs: list[str]) -> bytes:
    document = docx.Document()
    document.add_heading(title, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def _tenant(sp: FakeSharePoint):
    site = sp.add_site("sites/operations", groups={
        3: ("Operations Owners", [sp_user("ana@northwind.example")]),
        4: ("Operations Members", [sp_user("ana@northwind.example"), sp_user("ben@northwind.example"),
                                   sp_user("carla@northwind.example")]),
    })
    drive = sp.add_drive(site, "Documents", [site_group_perm(site, 3, "owner"), site_group_perm(site, 4, "read")])
    sp.add_file(drive, "On-call handbook.docx", _word("On-call handbook", [
        "When the warehouse barcode scanners stop reporting, page the Operations on-call engineer first.",
        "Escalate to the vendor after thirty minutes without recovery."]))
    incidents = sp.add_folder(drive, "Incidents", perms=[user_perm("ana@northwind.example", "owner"),
                                                         user_perm("ben@northwind.example", "read")])
    sp.add_file(drive, "2026-11 scanner outage review.md",
                "# Scanner outage review, November 2026\n\nThe barcode scanner outage in November was caused by "
                "an expired TLS certificate on the scanner gateway. Renewal is now automated.\n",
                parent=incidents.id)
    return drive, incidents


def main() -> int:
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True)
    key_pem, cert_pem = make_certificate()
    (DATA_DIR / "app.pem").write_text(key_pem + cert_pem)
    (DATA_DIR / "chatops.yml").write_text(yaml.safe_dump({"sources": [
        {"name": "operations", "kind": "sharepoint", "sites": [SITE]}]}))
    entra = FakeEntra(users={}, certificate=cert_pem)
    sp = FakeSharePoint(host="northwind.sharepoint.com")
    entra.extend(sp)
    failures: list[str] = []
    with entra, tempfile.TemporaryDirectory():
        drive, incidents = _tenant(sp)
        settings = load_settings(
            CHATOPS_DATA_DIR=str(DATA_DIR), QDRANT_PATH=str(DATA_DIR / "index"), QDRANT_URL=None,
            CHATOPS_CONFIG=str(DATA_DIR / "chatops.yml"), CHATOPS_IDENTITY_PROVIDER="directory",
            CHATOPS_DIRECTORY_FILE=str(REPO / "demo" / "directory.yml"), CHATOPS_KEY_PREFIX="chatops-demo-sp",
            ENTRA_TENANT_ID="tenant-1", ENTRA_CLIENT_ID="client-1",
            ENTRA_CLIENT_CERTIFICATE_PATH=str(DATA_DIR / "app.pem"), SLACK_BOT_TOKEN=None)
        logs.setup("ERROR", "text")
        container = Container(settings, http_client=entra.session())
        try:
            print("=" * 78)
            print("chatops demo: a SharePoint library, with its permissions")
            print("=" * 78)
            print(f"Site:    {SITE} (a loopback stand-in for Graph and SharePoint)")
            print("Library: Documents — 'On-call handbook.docx' for the site's members; the folder")
            print("         'Incidents' shared with Ben (and Ana, its owner) only")
            print()
            print("$ chatops sources sync operations")
            report = container.sync("operations").run("changes")
            print(report.summary())
            pipeline = container.pipeline(with_slack=False)

            ask = asker(pipeline, QUESTION)

            review = "2026-11 scanner outage review.md"
            print(f'\n"{QUESTION}"')
            print("▶ Ben (shared the Incidents folder):")
            if review not in ask("ben@northwind.example"):
                failures.append("Ben should get the outage review")
            print("▶ Carla (a site member, not shared the folder):")
            if review in ask("carla@northwind.example"):
                failures.append("Carla must not get the outage review")

            print("\nIn SharePoint, Ana stops sharing the Incidents folder with Ben.")
            sp.set_perms(drive, incidents.id, [user_perm("ana@northwind.example", "owner")])
            print("$ chatops sources sync operations        (what the scheduler runs every 5 minutes)")
            report = container.sync("operations").run("changes")
            print(report.summary())
            print(f'\n"{QUESTION}"')
            print("▶ Ben, again:")
            if review in ask("ben@northwind.example"):
                failures.append("after the revoke, Ben must no longer get the outage review")
            print("  (the permission change was written in place: nothing downloaded or embedded again)")
            print()
            for row in container.source_statuses():
                print(f"$ chatops sources status\n{row.name}: {row.documents} documents, ACL watermark "
                      f"{'set' if row.acl_watermark else 'none'}, {'STALE' if row.stale else 'fresh'}")
        finally:
            container.close()
    return verdict(failures, "SharePoint")


if __name__ == "__main__":
    sys.exit(main())
