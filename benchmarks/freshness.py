"""How fresh answers stay when SharePoint changes, and how fast a drive syncs.

``freshness`` — the whole loop, on the stand-ins (tests/standins: Graph, SharePoint REST, Entra),
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

Run from the repository root (``PYTHONPATH=.``): the stand-ins live in tests/standins.
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatops import logs  # noqa: E402
from chatops.settings import Settings  # noqa: E402
from chatops_app.container import Container  # noqa: E402
from tests.sources.conftest import make_certificate  # noqa: E402
from tests.standins.fake_entra import FakeEntra  # noqa: E402
from tests.standins.fake_sharepoint import FakeSharePoint, site_group_perm, sp_user, user_perm  # noqa: E402
from usecases.ask import Question  # noqa: E402

SITE = "https://contoso.sharepoint.com/sites/engineering"
QUESTION = "What caused the scanner outage?"
TARGET = "outage-review.md"
CAUSES = ("an expired certificate on the gateway", "a full disk on the scanner host")
REVIEW = f"# Outage review\n\nThe scanner outage was caused by {CAUSES[0]}.\n"


def _settings(data: Path, prefix: str, **env) -> Settings:
    key_pem, cert_pem = make_certificate()
    (data / "app.pem").write_text(key_pem + cert_pem)
    (data / "chatops.yml").write_text(yaml.safe_dump({"sources": [
        {"name": "eng", "kind": "sharepoint", "sites": [SITE]}]}))
    (data / "directory.yml").write_text("users:\n  - {email: ana@contoso.com, groups: []}\n"
                                        "  - {email: bob@contoso.com, groups: []}\n")
    settings = Settings.load(
        CHATOPS_DATA_DIR=str(data), QDRANT_PATH=str(data / "index"), QDRANT_URL=None,
        CHATOPS_CONFIG=str(data / "chatops.yml"), CHATOPS_IDENTITY_PROVIDER="directory",
        CHATOPS_DIRECTORY_FILE=str(data / "directory.yml"), CHATOPS_KEY_PREFIX=prefix, CHATOPS_QUEUE=prefix,
        ENTRA_TENANT_ID="tenant-1", ENTRA_CLIENT_ID="client-1", ENTRA_CLIENT_CERTIFICATE_PATH=str(data / "app.pem"),
        SLACK_BOT_TOKEN=None, **env)
    return settings, cert_pem


def _tenant(sp: FakeSharePoint, items: int = 0):
    site = sp.add_site("sites/engineering", groups={
        4: ("Members", [sp_user("ana@contoso.com"), sp_user("bob@contoso.com")])})
    drive = sp.add_drive(site, "Documents", [site_group_perm(site, 4, "read")])
    sp.add_file(drive, "handbook.md", "# Handbook\n\nHow we work: small teams, written decisions.\n")
    folders = [sp.add_folder(drive, f"area-{n:03d}") for n in range(max(1, items // 100))] if items else []
    for n in range(items):
        sp.add_file(drive, f"note-{n:05d}.md", f"# Note {n}\n\nTopic {n % 97}: text of note {n} about area "
                    f"{n % 100} and its routines.\n", parent=folders[n % len(folders)].id)
    return site, drive


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
    settings, cert = _settings(data, prefix, **env)
    logs.setup("ERROR", "text")
    entra = FakeEntra(users={}, certificate=cert)
    sp = FakeSharePoint()
    entra.extend(sp)
    results: dict[str, list[float]] = {"revoke": [], "grant": [], "delete": [], "restore": [], "edit": []}
    with entra:
        site, drive = _tenant(sp)
        folder = sp.add_folder(drive, "incidents", perms=[user_perm("bob@contoso.com")])
        review = sp.add_file(drive, TARGET, REVIEW, parent=folder.id)
        container = Container(settings, http_client=entra.session())
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
        app.conf.beat_schedule = beat_schedule(settings, ["eng"])
        beat = Service(app, schedule_filename=str(schedule), max_interval=1)
        threading.Thread(target=beat.start, daemon=True).start()

        def cited(email: str, saying: str | None = None) -> bool:
            answer, _ = pipeline.ask(Question(text=QUESTION, asker_email=email))
            return TARGET in {c.title for c in answer.citations} and (saying is None or saying in answer.text)

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
                    sp.set_perms(drive, folder.id, [user_perm("ana@contoso.com")])
                    _tap(sp, drive, args.notify)
                    results["revoke"].append(wait_for(False, "bob@contoso.com", time.monotonic()))
                    sp.set_perms(drive, folder.id, [user_perm("bob@contoso.com")])
                    _tap(sp, drive, args.notify)
                    results["grant"].append(wait_for(True, "bob@contoso.com", time.monotonic()))
                elif kind == "delete":
                    sp.delete(drive, review.id)
                    _tap(sp, drive, args.notify)
                    results["delete"].append(wait_for(False, "bob@contoso.com", time.monotonic()))
                    review = sp.add_file(drive, TARGET, REVIEW.replace(CAUSES[0], cause), parent=folder.id)
                    _tap(sp, drive, args.notify)
                    results["restore"].append(wait_for(True, "bob@contoso.com", time.monotonic()))
                else:
                    # the edit changes the cause the document gives; the answer must quote the new one
                    cause = CAUSES[1] if cause == CAUSES[0] else CAUSES[0]
                    sp.edit(drive, review.id, REVIEW.replace(CAUSES[0], cause))
                    _tap(sp, drive, args.notify)
                    results["edit"].append(wait_for(True, "bob@contoso.com", time.monotonic(), saying=cause))
                print(f"flip {n + 1}/{args.flips} ({kind}): "
                      + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in results.items() if v), file=sys.stderr)
        beat.stop()
        if server is not None:
            server.should_exit = True
        container.close()
    shutil.rmtree(data, ignore_errors=True)
    every = {"changes_every_s": args.changes_every, "permissions_every_s": args.permissions_every}
    return {"mode": "notifications" if args.notify else "polling", **every, "poll_s": args.poll,
            **{k: _pcts(v) for k, v in results.items() if v},
            "all": _pcts([x for v in results.values() for x in v])}


def _tap(sp: FakeSharePoint, drive, notify: bool) -> None:
    if notify:
        sp.notify(drive)


# -- throughput -----------------------------------------------------------------------------------


def throughput(args) -> dict:
    data = Path(tempfile.mkdtemp(prefix="chatops-tput-"))
    settings, cert = _settings(data, f"chatops-bench-tput-{uuid.uuid4().hex[:6]}")
    logs.setup("ERROR", "text")
    entra = FakeEntra(users={}, certificate=cert)
    sp = FakeSharePoint(page_size=200)       # Graph's delta pages hold about 200 items
    entra.extend(sp)
    out: dict = {"items": args.items, "embedder": "hash" if args.hash_embedder else "all-MiniLM-L6-v2"}
    with entra:
        _site, drive = _tenant(sp, args.items)
        container = Container(settings, http_client=entra.session())
        if args.hash_embedder:
            from tests.ingest_helpers import HashEmbedder

            container._built["embedder"] = HashEmbedder()
        sync = container.sync("eng")
        http = sync.source.http
        rss0 = _rss_mb()

        def measure(label: str, mode: str, documents: int):
            calls0, reqs0, downloads0 = http.http_calls, http.graph_requests, sp.downloads
            started = time.perf_counter()
            report = sync.run(mode)
            seconds = time.perf_counter() - started
            assert report.done and not report.error, report.summary()
            http_calls, graph_requests = http.http_calls - calls0, http.graph_requests - reqs0
            out[label] = {"seconds": round(seconds, 1), "documents": documents,
                          "documents_per_s": round(documents / seconds, 1) if seconds else None,
                          "http_calls": http_calls, "graph_requests": graph_requests,
                          "http_calls_per_document": round(http_calls / max(1, documents), 3),
                          "graph_requests_per_document": round(graph_requests / max(1, documents), 3),
                          "downloads": sp.downloads - downloads0, "summary": report.summary()}
            print(f"{label}: {out[label]}", file=sys.stderr)

        measure("full", "full", args.items + 1)
        notes = [i for i in drive.items.values() if i.name.startswith("note-")][: args.edits]
        for item in notes:
            sp.edit(drive, item.id, f"# Note\n\nEdited {item.id}.\n")
        measure("changes", "changes", len(notes))
        measure("permissions", "permissions", args.items + 1)
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
    f.add_argument("--changes-every", type=float, default=300)
    f.add_argument("--permissions-every", type=float, default=900)
    f.add_argument("--full-every", type=float, default=86400)
    f.add_argument("--flips", type=int, default=6)
    f.add_argument("--poll", type=float, default=1.0)
    f.add_argument("--timeout", type=float, default=1500)
    f.add_argument("--notify", action="store_true")
    t = sub.add_parser("throughput")
    t.add_argument("--items", type=int, default=10_000)
    t.add_argument("--edits", type=int, default=50)
    t.add_argument("--hash-embedder", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = freshness(args) if args.what == "freshness" else throughput(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
