"""Graph change notifications: the subscriptions a source keeps (against the loopback Graph,
which validates the notification URL as Graph does), and the web endpoint that receives them
(served by uvicorn on loopback, posted to by the stand-in)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from fastapi import FastAPI

from bot.graph_notify import graph_notify_route
from tests.serving import serve_asgi
from tests.sources.test_sharepoint_sync import build
from usecases.notifications import Asked, client_state, notify_url, read_notifications

SECRET = "notify-secret"


@pytest.fixture
def endpoint():
    """The notification route alone in a FastAPI app on a free loopback port; records what it asks."""
    asked: list[tuple[str, str]] = []
    app = FastAPI()
    app.router.routes.append(graph_notify_route(secret=SECRET, sources=frozenset({"eng-docs"}),
                                                ask=lambda s, m: asked.append((s, m)), max_body_bytes=4096))
    with serve_asgi(app) as url:
        yield url, asked


def test_client_state_is_per_source_and_checked():
    good = {"value": [{"subscriptionId": "s1", "clientState": client_state(SECRET, "eng-docs"),
                       "resource": "drives/b!x/root", "changeType": "updated"}]}
    assert read_notifications(good, "eng-docs", SECRET) == ({Asked("eng-docs", "changes")}, 0)
    assert read_notifications(good, "other", SECRET) == (set(), 1)          # another source's state
    assert read_notifications(good, "eng-docs", "another secret") == (set(), 1)
    forged = {"value": [{"clientState": "guess", "resource": "drives/b!x/root"}, "junk"]}
    assert read_notifications(forged, "eng-docs", SECRET) == (set(), 2)
    life = {"value": [{"lifecycleEvent": "reauthorizationRequired", "clientState": client_state(SECRET, "eng-docs")},
                      {"lifecycleEvent": "missed", "clientState": client_state(SECRET, "eng-docs")}]}
    assert read_notifications(life, "eng-docs", SECRET)[0] == {Asked("eng-docs", "subscriptions"),
                                                               Asked("eng-docs", "changes")}


def test_the_endpoint_answers_the_handshake_refuses_forgeries_and_queues_at_once(endpoint):
    base, asked = endpoint
    url = notify_url(base, "eng-docs")
    token = "Validation: token with spaces & <marks>"
    answer = requests.post(f"{url}&validationToken={requests.utils.quote(token)}", data=b"")
    assert answer.status_code == 200 and answer.text == token
    assert answer.headers["content-type"].startswith("text/plain")
    forged = requests.post(url, json={"value": [{"clientState": "x", "resource": "drives/d/root"}]})
    assert forged.status_code == 403 and asked == []
    assert requests.post(url, data=b"not json").status_code == 400
    assert requests.post(url, data=b"x" * 5000).status_code == 413
    assert requests.post(notify_url(base, "nope"), json={"value": []}).status_code == 404
    good = {"value": [{"clientState": client_state(SECRET, "eng-docs"), "resource": "drives/d/root"}] * 3}
    started = time.perf_counter()
    accepted = requests.post(url, json=good)
    assert accepted.status_code == 202 and time.perf_counter() - started < 3
    assert asked == [("eng-docs", "changes")]            # three taps, one sync asked for


def test_a_source_keeps_one_subscription_per_drive_and_notifications_reach_the_endpoint(tenant, endpoint):
    base, asked = endpoint
    t = build(tenant)
    source = tenant.source()
    url, state = notify_url(base, "eng-docs"), client_state(SECRET, "eng-docs")
    assert source.watch(url, state) == {"created": 1, "renewed": 0, "deleted": 0, "kept": 0}
    (sub,) = tenant.sp.subscriptions.values()
    assert sub["resource"] == f"drives/{t['drive'].id}/root" and sub["clientState"] == state
    assert source.watch(url, state) == {"created": 0, "renewed": 0, "deleted": 0, "kept": 1}
    # a change in the drive: Graph taps the endpoint, which asks for the source's changes
    assert tenant.sp.notify(t["drive"]) == [202]
    assert asked == [("eng-docs", "changes")]
    # a lifecycle event: renew
    assert tenant.sp.lifecycle(sub["id"]) == 202 and asked[-1] == ("eng-docs", "subscriptions")
    # near its expiry the subscription is renewed; within Graph's limit
    soon = datetime.now(timezone.utc) + timedelta(days=1)
    sub["expirationDateTime"] = soon.isoformat().replace("+00:00", "Z")
    assert source.watch(url, state)["renewed"] == 1
    renewed = datetime.fromisoformat(sub["expirationDateTime"].replace("Z", "+00:00"))
    assert timedelta(days=28) < renewed - datetime.now(timezone.utc) <= timedelta(minutes=42300)
    # a drive no longer configured loses its subscription
    other = tenant.sp.add_drive(t["site"], "Other")
    assert source.watch(url, state)["created"] == 1
    narrowed = tenant.source(drives=[t["drive"].id])
    assert narrowed.watch(url, state)["deleted"] == 1
    assert {s["resource"] for s in tenant.sp.subscriptions.values()} == {f"drives/{t['drive'].id}/root"}
    assert other.id not in str(tenant.sp.subscriptions)


def test_graph_refuses_a_subscription_whose_url_does_not_answer_the_handshake(tenant):
    build(tenant)
    from connectors.sources.base import SourceUnavailable
    with pytest.raises(SourceUnavailable, match="400"):
        tenant.source().watch("http://127.0.0.1:9/sources/graph/notify?source=eng-docs", "x")
