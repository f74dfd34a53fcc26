"""How fresh answers stay when SharePoint changes, and how fast a drive syncs.

``freshness`` — the whole loop, on the stand-ins (standins/: Graph, SharePoint REST, Entra),
with the real scheduler (Celery beat, this repository's timetable), a real Celery worker (threads,
on the local Redis) running the source syncs, and the real question pipeline. Repeatedly, a
document is changed in SharePoint - a share revoked (then granted again), the document deleted
(then restored), its text edited - and the benchmark asks the question every
``--poll`` seconds until the answer changes. Reported: p50/p95/max of the time from the change to
the changed answer, per kind of change. ``--notify`` also runs the web endpoint for Graph's change
notifications and has the stand-in notify it after each change, as Graph does.

    python benchmarks/freshness.py freshness                      # the scheduler's defaults (slow)
    python benchmarks/freshness.py freshness --changes-every 20 --permissions-every 60 --flips 10
    python benchmarks/freshness.py freshness --notify --flips 10

``throughput`` — a full sync of one drive of ``--items`` documents (default 10,000), then a changes
sync after ``--edits`` edits, then a permission pass: documents per second, Graph requests per
document (HTTP round trips and the requests inside ``$batch``), downloads, and the peak RSS.

    python benchmarks/freshness.py throughput --items 10000
    python benchmarks/freshness.py throughput --items 10000 --hash-embedder   # the machinery alone

Run from the repository root (``PYTHONPATH=.``): the stand-ins live in standins/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatops import logs  # noqa: E402
from chatops.settings import Settings  # noqa: E402
from chatops_app.container import Container  # noqa: E402
from standins.certificates import make_certificate  # noqa: E402
from standins.fake_entra import FakeEntra  # noqa: E402
from standins.fake_jira import FakeJira  # noqa: E402
from standins.fake_confluence import FakeConfluence  # noqa: E402
from standins.fake_sharepoint import FakeSharePoint, site_group_perm, sp_user, user_perm  # noqa: E402
from usecases.ask import Question  # noqa: E402

SITE = "https://contoso.sharepoint.com/sites/engineering"
WIKI = "https://contoso.atlassian.net"
QUESTION = "What caused the scanner outage?"
CAUSES = ("an expired certificate on the gateway", "a full disk on the scanner host")
REVIEW = f"# Outage review\n\nThe scanner outage was caused by {CAUSES[0]}.\n"


class SharePointTenant:
    """A SharePoint site behind the Entra stand-in: the outage review in a folder shared with Bob."""

    kind, target, notifies = "sharepoint", "outage-review.md", True

    def __init__(self, data: Path):
        key_pem, cert_pem = make_certificate()
        (data / "app.pem").write_text(key_pem + cert_pem)
        self.env = dict(ENTRA_TENANT_ID="tenant-1", ENTRA_CLIENT_ID="client-1",
                        ENTRA_CLIENT_CERTIFICATE_PATH=str(data / "app.pem"))
        self.entry = {"name": "eng", "kind": "sharepoint", "sites": [SITE]}
        self.server = FakeEntra(users={}, certificate=cert_pem)
        self.sp = FakeSharePoint(page_size=200)      # Graph's delta pages hold about 200 items
        self.server.extend(self.sp)

    def session(self):
        return self.server.session()

    def build(self, items: int = 0, *, review: bool = True) -> None:
        sp = self.sp
        site = sp.add_site("sites/engineering", groups={
            4: ("Members", [sp_user("ana@contoso.com"), sp_user("bob@contoso.com")])})
        self.drive = drive = sp.add_drive(site, "Documents", [site_group_perm(site, 4, "read")])
        sp.add_file(drive, "handbook.md", "# Handbook\n\nHow we work: small teams, written decisions.\n")
        folders = [sp.add_folder(drive, f"area-{n:03d}") for n in range(max(1, items // 100))] if items else []
        for n in range(items):
            sp.add_file(drive, f"note-{n:05d}.md", _note(n), parent=folders[n % len(folders)].id)
        if review:
            self.folder = sp.add_folder(drive, "incidents", perms=[user_perm("bob@contoso.com")])
            self.review = sp.add_file(drive, self.target, REVIEW, parent=self.folder.id)

    def revoke(self):
        self.sp.set_perms(self.drive, self.folder.id, [user_perm("ana@contoso.com")])

    def grant(self):
        self.sp.set_perms(self.drive, self.folder.id, [user_perm("bob@contoso.com")])

    def delete(self):
        self.sp.delete(self.drive, self.review.id)

    def restore(self, text: str):
        self.review = self.sp.add_file(self.drive, self.target, text, parent=self.folder.id)

    def edit(self, text: str):
        self.sp.edit(self.drive, self.review.id, text)

    def tap(self):
        self.sp.notify(self.drive)

    def edit_many(self, n: int) -> int:
        notes = [i for i in self.drive.items.values() if i.name.startswith("note-")][:n]
        for item in notes:
            self.sp.edit(self.drive, item.id, f"# Note\n\nEdited {item.id}.\n")
        return len(notes)

    @property
    def downloads(self) -> int:
        return self.sp.downloads


class ConfluenceTenant:
    """A Confluence space: the outage review under a page restricted to Bob."""

    kind, target, notifies = "confluence", "Outage review", False

    def __init__(self, data: Path):
        self.cf = FakeConfluence(email="svc@contoso.com", token="bench-token")
        self.cf.public_url = WIKI
        os.environ["BENCH_CONFLUENCE_TOKEN"] = self.cf.token
        self.env = {}
        self.entry = {"name": "eng", "kind": "confluence", "url": f"{WIKI}/wiki", "spaces": ["ENG"],
                      "email": self.cf.email, "token_env": "BENCH_CONFLUENCE_TOKEN"}
        self.server = self.cf

    def session(self):
        from standins.fake_entra import Reroute

        session = requests.Session()
        session.mount(WIKI + "/", Reroute(WIKI, self.cf.origin))
        return session

    def build(self, items: int = 0, *, review: bool = True) -> None:
        cf = self.cf
        cf.add_user("acc-ana", "ana@contoso.com")
        cf.add_user("acc-bob", "bob@contoso.com")
        members = cf.add_group("members")
        cf.set_members(members, ["acc-ana", "acc-bob"])
        cf.add_space("ENG", "Engineering", read=[("group", members)])
        cf.add_page("ENG", "Handbook", "<p>How we work: small teams, written decisions.</p>")
        areas = [cf.add_page("ENG", f"Area {n:03d}", f"<p>Area {n}.</p>") for n in range(max(1, items // 100))] \
            if items else []
        for n in range(items):
            cf.add_page("ENG", f"Note {n:05d}", "<p>" + _note(n).split("\n\n", 1)[1] + "</p>",
                        parent=areas[n % len(areas)])
        if review:
            self.folder = cf.add_page("ENG", "Incidents", "<p>Incident reviews.</p>", read_users=["acc-bob"])
            self.review = cf.add_page("ENG", self.target, _html(REVIEW), parent=self.folder)

    def revoke(self):
        self.cf.restrict(self.folder, users=["acc-ana"])

    def grant(self):
        self.cf.restrict(self.folder, users=["acc-bob"])

    def delete(self):
        self.cf.trash(self.review)

    def restore(self, text: str):
        self.cf.restore(self.review)

    def edit(self, text: str):
        self.cf.edit(self.review, _html(text))

    def tap(self):
        raise SystemExit("Confluence Cloud has no change notifications to a service; --notify is for SharePoint")

    def edit_many(self, n: int) -> int:
        notes = [c.id for c in self.cf.contents.values() if c.title.startswith("Note ")][:n]
        for page_id in notes:
            self.cf.edit(page_id, f"<p>Edited {page_id}.</p>")
        return len(notes)

    @property
    def downloads(self) -> int:
        return self.cf.downloads


class JiraTenant:
    """A Jira project: the outage review an issue at a security level that names Bob."""

    kind, notifies = "jira", False

    def __init__(self, data: Path):
        self.jira = FakeJira(email="svc@contoso.com", token="bench-token", projects=())
        os.environ["BENCH_JIRA_TOKEN"] = self.jira.token
        self.env = {}
        self.entry = {"name": "eng", "kind": "jira", "url": WIKI, "projects": ["ENG"],
                      "email": self.jira.email, "token_env": "BENCH_JIRA_TOKEN"}
        self.server = self.jira

    @property
    def target(self) -> str:
        return f"{self.review}: Outage review"

    def session(self):
        from standins.fake_entra import Reroute

        session = requests.Session()
        session.mount(WIKI + "/", Reroute(WIKI, self.jira.origin))
        return session

    def build(self, items: int = 0, *, review: bool = True) -> None:
        j = self.jira
        j.add_user("acc-ana", "ana@contoso.com")
        j.add_user("acc-bob", "bob@contoso.com")
        members = j.add_group("members")
        j.set_members(members, ["acc-ana", "acc-bob"])
        j.add_project("ENG", "Engineering", browse=[("group", members)],
                      security_levels={"Incident": [("user", "acc-bob")]})
        j.add_issue("ENG", "Handbook", "How we work: small teams, written decisions.")
        for n in range(items):
            j.add_issue("ENG", f"Note {n:05d}", _note(n).split("\n\n", 1)[1])
        if review:
            self.review = j.add_issue("ENG", "Outage review", REVIEW.split("\n\n", 1)[1], security="Incident")

    def revoke(self):
        self.jira.set_level_members("ENG", "Incident", [("user", "acc-ana")])

    def grant(self):
        self.jira.set_level_members("ENG", "Incident", [("user", "acc-bob")])

    def delete(self):
        self.jira.delete(self.review)

    def restore(self, text: str):
        self.review = self.jira.add_issue("ENG", "Outage review", text.split("\n\n", 1)[1], security="Incident")

    def edit(self, text: str):
        self.jira.edit(self.review, description_text=text.split("\n\n", 1)[1])

    def tap(self):
        raise SystemExit("Jira Cloud has no change notifications to a service; --notify is for SharePoint")

    def edit_many(self, n: int) -> int:
        keys = [f"ENG-{k}" for k in range(2, 2 + n)]
        for key in keys:
            self.jira.edit(key, description_text=f"Edited {key}.")
        return len(keys)

    @property
    def downloads(self) -> int:
        return 0


TENANTS = {"sharepoint": SharePointTenant, "confluence": ConfluenceTenant, "jira": JiraTenant}


def _note(n: int) -> str:
    return f"# Note {n}\n\nTopic {n % 97}: text of note {n} about area {n % 100} and its routines.\n"


def _html(markdown: str) -> str:
    return "".join(f"<p>{line}</p>" for line in markdown.split("\n") if line and not line.startswith("#"))


def _settings(data: Path, prefix: str, tenant, **env) -> Settings:
    (data / "chatops.yml").write_text(yaml.safe_dump({"sources": [tenant.entry]}))
    (data / "directory.yml").write_text("users:\n  - {email: ana@contoso.com, groups: []}\n"
                                        "  - {email: bob@contoso.com, groups: []}\n")
    return Settings.load(
        CHATOPS_DATA_DIR=str(data), QDRANT_PATH=str(data / "index"), QDRANT_URL=None,
        CHATOPS_CONFIG=str(data / "chatops.yml"), CHATOPS_IDENTITY_PROVIDER="directory",
        CHATOPS_DIRECTORY_FILE=str(data / "directory.yml"), CHATOPS_KEY_PREFIX=prefix, CHATOPS_QUEUE=prefix,
        SLACK_BOT_TOKEN=None, **tenant.env, **env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pcts(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(values), "p50_s": round(statistics.median(ordered), 1), "p95_s": round(p95, 1),
            "max_s": round(ordered[-1], 1)}


# -- freshness ------------------------------------------------------------------------------------


def freshness(args) -> dict:
    from celery.beat import Service
    from celery.contrib.testing.worker import start_worker

    from bot.graph_notify import graph_notify_route
    from bot.maintenance.task import MAINTENANCE
    from workers.beat import beat_schedule
    from workers.celery_app import register_tasks

    data = Path(tempfile.mkdtemp(prefix="chatops-fresh-"))
    prefix = f"chatops-bench-fresh-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    env = dict(CHATOPS_SYNC_CHANGES_EVERY=str(args.changes_every),
               CHATOPS_SYNC_PERMISSIONS_EVERY=str(args.permissions_every),
               CHATOPS_SYNC_FULL_EVERY=str(args.full_every))
    if args.notify:
        env.update(CHATOPS_PUBLIC_URL=f"http://127.0.0.1:{port}", GRAPH_NOTIFY_SECRET="bench-secret")
    tenant = TENANTS[args.source](data)
    if args.notify and not tenant.notifies:
        raise SystemExit(f"--notify: {args.source} sends no change notifications (it is polled)")
    settings = _settings(data, prefix, tenant, **env)
    logs.setup("ERROR", "text")
    results: dict[str, list[float]] = {"revoke": [], "grant": [], "delete": [], "restore": [], "edit": []}
    with tenant.server:
        tenant.build()
        container = Container(settings, http_client=tenant.session())
        app = container.celery
        register_tasks(app, container.runtime(), max_retries=1, ingest_time_limit=settings.ingest_time_limit)
        container.sync("eng").run("full")          # the initial sync, as an operator would run it
        pipeline = container.pipeline(with_slack=False)
        server = None
        if args.notify:
            import uvicorn
            from fastapi import FastAPI

            web = FastAPI()
            web.router.routes.append(graph_notify_route(secret="bench-secret", sources=frozenset({"eng"}),
                                                        ask=container.request_sync))
            server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=port, log_level="error"))
            threading.Thread(target=server.run, daemon=True).start()
            while not server.started:
                time.sleep(0.02)
            print("subscriptions:", container.watch_sources("eng"), file=sys.stderr)
        schedule = data / "beat-schedule"
        app.conf.beat_schedule = beat_schedule(settings, ["eng"], maintenance=MAINTENANCE)
        beat = Service(app, schedule_filename=str(schedule), max_interval=1)
        threading.Thread(target=beat.start, daemon=True).start()

        def cited(email: str, saying: str | None = None) -> bool:
            answer, _ = pipeline.ask(Question(text=QUESTION, asker_email=email))
            return tenant.target in {c.title for c in answer.citations} and (saying is None or saying in answer.text)

        def wait_for(expected: bool, email: str, since: float, saying: str | None = None) -> float:
            deadline = since + args.timeout
            while time.monotonic() < deadline:
                if cited(email, saying) == expected:
                    return time.monotonic() - since
                time.sleep(args.poll)
            answer, _ = pipeline.ask(Question(text=QUESTION, asker_email=email))
            raise TimeoutError(f"the answer did not change within {args.timeout} s: {answer.text!r} "
                               f"{[c.title for c in answer.citations]}")

        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="ERROR",
                          queues=[settings.queue_name, settings.ingest_queue], shutdown_timeout=30):
            assert cited("bob@contoso.com"), "the initial sync should let Bob see the review"
            cause = CAUSES[0]
            for n in range(args.flips):
                # let the change land at a random point of the scheduler's cycle
                time.sleep((hash((n, "jitter")) % 1000) / 1000 * args.changes_every * 0.5)
                kind = ("revoke", "delete", "edit")[n % 3]
                if kind == "revoke":
                    tenant.revoke()
                    _tap(tenant, args.notify)
                    results["revoke"].append(wait_for(False, "bob@contoso.com", time.monotonic()))
                    tenant.grant()
                    _tap(tenant, args.notify)
                    results["grant"].append(wait_for(True, "bob@contoso.com", time.monotonic()))
                elif kind == "delete":
                    tenant.delete()
                    _tap(tenant, args.notify)
                    results["delete"].append(wait_for(False, "bob@contoso.com", time.monotonic()))
                    tenant.restore(REVIEW.replace(CAUSES[0], cause))
                    _tap(tenant, args.notify)
                    results["restore"].append(wait_for(True, "bob@contoso.com", time.monotonic()))
                else:
                    # the edit changes the cause the document gives; the answer must quote the new one
                    cause = CAUSES[1] if cause == CAUSES[0] else CAUSES[0]
                    tenant.edit(REVIEW.replace(CAUSES[0], cause))
                    _tap(tenant, args.notify)
                    results["edit"].append(wait_for(True, "bob@contoso.com", time.monotonic(), saying=cause))
                print(f"flip {n + 1}/{args.flips} ({kind}): "
                      + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in results.items() if v), file=sys.stderr)
        beat.stop()
        if server is not None:
            server.should_exit = True
        container.close()
    shutil.rmtree(data, ignore_errors=True)
    every = {"changes_every_s": args.changes_every, "permissions_every_s": args.permissions_every}
    return {"source": args.source, "mode": "notifications" if args.notify else "polling", **every,
            "poll_s": args.poll,
            **{k: _pcts(v) for k, v in results.items() if v},
            "all": _pcts([x for v in results.values() for x in v])}


def _tap(tenant, notify: bool) -> None:
    if notify:
        tenant.tap()


# -- throughput -----------------------------------------------------------------------------------


def throughput(args) -> dict:
    data = Path(tempfile.mkdtemp(prefix="chatops-tput-"))
    tenant = TENANTS[args.source](data)
    settings = _settings(data, f"chatops-bench-tput-{uuid.uuid4().hex[:6]}", tenant)
    logs.setup("ERROR", "text")
    out: dict = {"source": args.source, "items": args.items,
                 "embedder": "hash" if args.hash_embedder else "all-MiniLM-L6-v2"}
    with tenant.server:
        tenant.build(args.items, review=False)
        container = Container(settings, http_client=tenant.session())
        if args.hash_embedder:
            from tests.ingest_helpers import HashEmbedder

            container._built["embedder"] = HashEmbedder()
        sync = container.sync("eng")
        http = sync.source.http
        rss0 = _rss_mb()

        def measure(label: str, mode: str, documents: int):
            # Graph counts the requests inside a $batch one by one; elsewhere a request is a call
            calls0, reqs0, downloads0 = http.http_calls, getattr(http, "graph_requests", 0), tenant.downloads
            started = time.perf_counter()
            report = sync.run(mode)
            seconds = time.perf_counter() - started
            assert report.done and not report.error, report.summary()
            http_calls = http.http_calls - calls0
            api_requests = (getattr(http, "graph_requests", 0) - reqs0) or http_calls
            out[label] = {"seconds": round(seconds, 1), "documents": documents,
                          "documents_per_s": round(documents / seconds, 1) if seconds else None,
                          "http_calls": http_calls, "api_requests": api_requests,
                          "http_calls_per_document": round(http_calls / max(1, documents), 3),
                          "api_requests_per_document": round(api_requests / max(1, documents), 3),
                          "downloads": tenant.downloads - downloads0, "summary": report.summary()}
            print(f"{label}: {out[label]}", file=sys.stderr)

        total = args.items + 1 + (max(1, args.items // 100) if args.source == "confluence" else 0)
        measure("full", "full", total)
        measure("changes", "changes", tenant.edit_many(args.edits))
        measure("permissions", "permissions", total)
        out["peak_rss_mb"] = round(_rss_mb(), 1)
        out["rss_before_sync_mb"] = round(rss0, 1)
        container.close()
    shutil.rmtree(data, ignore_errors=True)
    return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    f = sub.add_parser("freshness")
    f.add_argument("--source", choices=sorted(TENANTS), default="sharepoint")
    f.add_argument("--changes-every", type=float, default=300)
    f.add_argument("--permissions-every", type=float, default=900)
    f.add_argument("--full-every", type=float, default=86400)
    f.add_argument("--flips", type=int, default=6)
    f.add_argument("--poll", type=float, default=1.0)
    f.add_argument("--timeout", type=float, default=1500)
    f.add_argument("--notify", action="store_true")
    t = sub.add_parser("throughput")
    t.add_argument("--source", choices=sorted(TENANTS), default="sharepoint")
    t.add_argument("--items", type=int, default=10_000)
    t.add_argument("--edits", type=int, default=50)
    t.add_argument("--hash-embedder", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = freshness(args) if args.what == "freshness" else throughput(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
