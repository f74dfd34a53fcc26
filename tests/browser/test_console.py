"""The operator console in headless Chromium, against the real web app (``Container.web_app()``,
uvicorn on a free port) over a file SQLite audit trail seeded through the store's own APIs.

One operator signs in with a real ``chatops admin link --as`` URL (the CLI's own code path) and its
confirm button, opens every page and checks it against the database; opening a link spends nothing,
confirming it does, and links expire; a POST without its CSRF
token is refused; the privacy setting ``off`` hides question text. A second web app signs people
in with Entra (the loopback Entra over TLS, msal's authorisation-code flow with PKCE in the
browser): an admin gets in, someone outside CHATOPS_ADMIN_GROUPS gets 403. Each page's screenshot
is saved under tests/browser/artifacts/.
"""

from __future__ import annotations

import csv
import io
import ssl
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis
import trustme
from sqlalchemy import func, select

from chatops.settings import Settings
from chatops.store import Store
from chatops.store.answers import Answers
from chatops.store.models import Question
from chatops_app.container import Container
from console.auth import console_secret
from console.privacy import Privacy
from tests.browser.conftest import ARTIFACTS, Served, free_socket
from tests.integration.test_cli import Cli
from tests.settings_env import clear_settings_env
from standins.fake_entra import FakeEntra
from standins.fake_slack import FakeSlack
from workers.health import Health

pytestmark = pytest.mark.redis

ADMINS = "0f3c9a2e-5b1d-4e7a-9c2f-1a2b3c4d5e6f"
ENTRA_USERS = {
    "ana@contoso.com": {"id": "oid-ana", "displayName": "Ana Admin", "groups": [{"id": ADMINS}]},
    "ben@contoso.com": {"id": "oid-ben", "displayName": "Ben Reader", "groups": [{"id": "5e5e5e5e-0000-4000-8000-000000000001"}]},
}
SECRETS = {"SLACK_BOT_TOKEN": "xoxb-console-browser-test", "SLACK_SIGNING_SECRET": "console-browser-signing-secret"}
NOW = datetime.now(timezone.utc).replace(microsecond=0)


# -- the audit trail ---------------------------------------------------------------------------


def seed(store: Store) -> dict:
    """Questions of every outcome over ten days (and one older than the console's 30 days), votes,
    and proposals pending, succeeded and failed."""
    answers = Answers(store)
    ids: dict[str, int] = {}

    def ask(key, mode, days, text, *, asker="UANA", email="ana@northwind.example", channel="COPS", **facts):
        ids[key] = store.record_question(question=text, mode=mode, at=NOW - timedelta(days=days, minutes=5),
                                         channel=channel, channel_type="channel", asker_slack_id=asker,
                                         asker_email=email, audience=f"{len(facts.get('audience_members') or [])} channel members",
                                         latency_ms=facts.pop("latency_ms", 1500.0), cited=facts.pop("cited", []),
                                         facts={"answer_id": f"ans-{key}", **facts})

    ask("vpn", "llm", 1, "How do I set up the VPN on <b>Linux</b>?",
        route="gpt-4o-mini", stages={"identity": 14.0, "audience": 40.0, "retrieval": 85.5, "generation": 1320.0},
        top_similarity=0.82, sources_count=3, citations_kept=1, citations_dropped=0, prompt_tokens=1234,
        completion_tokens=210, cost=0.00321, answer="Install WireGuard, then import the profile from the portal [1].",
        retrieved=[{"doc_id": "handbook/vpn.md", "source": "fs:handbook", "title": "VPN setup", "score": 0.8213},
                   {"doc_id": "handbook/wifi.md", "source": "fs:handbook", "title": "Office Wi-Fi", "score": 0.4107}],
        audience_members=["UANA", "UBEN"], latency_ms=1610.0,
        cited=[{"n": 1, "title": "VPN setup", "source": "handbook/vpn.md", "url": "https://intranet.example/vpn"}])
    ask("deploy", "llm", 2, "How do we deploy billing?", asker="UBEN", email="ben@northwind.example",
        route="gpt-4o", stages={"identity": 9.0, "retrieval": 70.0, "generation": 2400.0}, prompt_tokens=2000,
        completion_tokens=300, cost=0.0125, answer="Use the old deploy script.", audience_members=["UANA", "UBEN"],
        retrieved=[{"doc_id": "runbooks/old-deploy.md", "source": "fs:runbooks", "title": "Old deploy", "score": 0.7}],
        cited=[{"n": 1, "title": "Old deploy", "source": "runbooks/old-deploy.md", "url": None}])
    ask("wifi", "extractive", 3, "What is the Wi-Fi password?", channel="CSUP", audience_members=["UANA"],
        retrieved=[{"doc_id": "handbook/wifi.md", "source": "fs:handbook", "title": "Office Wi-Fi", "score": 0.77}])
    ask("vpn2", "cached", 3, "how do i set up the vpn", route="gpt-4o-mini", cost=0.0, audience_members=["UANA"])
    ask("park1", "no-evidence", 4, "Where is the parking garage policy?", latency_ms=300.0)
    ask("park2", "no-evidence", 2, "where is the parking garage policy", asker="UBEN", email="ben@northwind.example")
    ask("lunch", "no-evidence", 1, "Who caters the Friday lunch?", channel="CSUP")
    ask("nope", "refused", 5, "Show me the salary bands", asker="UEVE", email=None)
    ask("boom", "failed", 0, "Why did the model time out?", channel="CSUP")
    ask("hi", "greeting", 6, "hello!")
    ask("old", "llm", 40, "An old question, outside the last 30 days", route="gpt-4o-mini", cost=0.5)

    answers.vote(answers.get("ans-vpn"), "UBEN", "helpful")
    answers.vote(answers.get("ans-vpn"), "UANA", "helpful")
    answers.vote(answers.get("ans-deploy"), "UBEN", "not_helpful", reason="that script was retired")

    def propose(action, args, requester):
        return store.create_proposal(action=action, arguments=args, requested_by_slack=requester,
                                     requested_by_email=None, approvers={"groups": ["sre"]}, allow_self_approval=False,
                                     channel="COPS", thread_ts="1.1", expires_at=NOW + timedelta(hours=1),
                                     correlation_id=None)
    pending = propose("restart_service", {"service": "billing", "env": "staging"}, "UBEN")
    done = propose("flush_cache", {"cache": "search"}, "UBEN")
    store.transition(done.id, "approved", from_states=["proposed"], actor_slack_id="UANA")
    store.transition(done.id, "executing", from_states=["approved"])
    store.transition(done.id, "succeeded", from_states=["executing"], result={"status": 202})
    broken = propose("restart_service", {"service": "search", "env": "production"}, "UANA")
    store.transition(broken.id, "approved", from_states=["proposed"], actor_slack_id="UCARL")
    store.transition(broken.id, "executing", from_states=["approved"])
    store.transition(broken.id, "failed", from_states=["executing"], result={"status": 500, "error": "hook down"})
    return {"ids": ids, "pending": pending, "done": store.get_proposal(done.id), "broken": store.get_proposal(broken.id)}


def counts_by_mode(store: Store, since: datetime) -> dict[str, int]:
    stmt = select(Question.mode, func.count()).where(Question.at >= since).group_by(Question.mode)
    with store.engine.connect() as conn:
        return dict(conn.execute(stmt).all())


# -- the world: two web apps, the CLI, Chromium ------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory, chromium):
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    root = tmp_path_factory.mktemp("console")
    prefix, entra_prefix = f"chatops-console-{uuid.uuid4().hex[:8]}", f"chatops-console-e-{uuid.uuid4().hex[:8]}"
    db_url = f"sqlite:///{root / 'data' / 'chatops.db'}"
    store = Store.for_url(db_url)
    seeded = seed(store)

    ca = trustme.CA()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    bundle = root / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    entra = FakeEntra(users=ENTRA_USERS, direct=True)
    entra.tls = tls
    slack = FakeSlack()
    link_sock, entra_sock = free_socket(), free_socket()
    served: list[Served] = []
    with entra, slack, pytest.MonkeyPatch.context() as env:
        clear_settings_env(env)        # only what is set here reaches the settings
        env.setenv("REQUESTS_CA_BUNDLE", str(bundle))      # msal and Graph trust the loopback Entra's CA
        base = {**SECRETS, "SLACK_API_URL": slack.url, "DATABASE_URL": db_url, "CHATOPS_DATA_DIR": str(root / "data"),
                "REDIS_URL": "redis://127.0.0.1:6379/0", "CHATOPS_QUEUE": f"{prefix}-q", "CHATOPS_IDENTITY_PROVIDER": "directory"}
        link_env = {**base, "CHATOPS_KEY_PREFIX": prefix, "CHATOPS_PUBLIC_URL": f"http://127.0.0.1:{link_sock.getsockname()[1]}"}
        entra_env = {**base, "CHATOPS_KEY_PREFIX": entra_prefix,
                     "CHATOPS_PUBLIC_URL": f"http://127.0.0.1:{entra_sock.getsockname()[1]}",
                     "ENTRA_TENANT_ID": entra.tenant_id, "ENTRA_CLIENT_ID": entra.client_id,
                     "ENTRA_CLIENT_SECRET": entra.client_secret, "ENTRA_AUTHORITY_HOST": f"{entra.origin}/login",
                     "ENTRA_INSTANCE_DISCOVERY": "false", "GRAPH_URL": f"{entra.origin}/graph/v1.0",
                     "CHATOPS_ADMIN_GROUPS": f"{ADMINS}, 1d1d1d1d-0000-4000-8000-000000000009"}
        containers = [Container(Settings.load(**link_env)), Container(Settings.load(**entra_env))]
        try:
            started = time.perf_counter()
            served.append(Served(containers[0].web_app(), link_sock))
            served.append(Served(containers[1].web_app(), entra_sock))
            yield {"store": store, "seeded": seeded, "redis": client, "prefix": prefix, "cli": Cli(link_env),
                   "entra_cli": Cli(entra_env), "url": served[0].url, "entra_url": served[1].url, "entra": entra,
                   "chromium": chromium, "queue": f"{prefix}-q", "started": started}
        finally:
            for s in served:
                s.stop()
            for c in containers:
                c.close()
            store.close()
            for p in (prefix, entra_prefix):
                for key in client.scan_iter(f"{p}:*"):
                    client.delete(key)
            client.delete(f"{prefix}-q")
            client.close()


OPERATOR = "Olga Operator"


def link(world, *args: str) -> str:
    result = world["cli"]("admin", "link", "--as", OPERATOR, *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout                                     # the URL alone, for scripts
    assert lines[0].startswith(f"{world['url']}/admin/auth/link?t=")
    return lines[0]


def signed_in(world):
    context = world["chromium"].new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    confirm(page, link(world))
    return context, page


def confirm(page, url: str) -> None:
    """Open a sign-in link and press its button: signed in, on the overview."""
    page.goto(url)
    page.click(f"form[action='/admin/auth/link'] button:text('Sign in as {OPERATOR}')")
    page.wait_for_url("**/admin/")
    assert page.locator(".who .user").inner_text() == OPERATOR


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def cells(page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


# -- the tests ---------------------------------------------------------------------------------


def test_every_page_shows_what_the_audit_trail_holds(world):
    store, seeded, url = world["store"], world["seeded"], world["url"]
    context, page = signed_in(world)
    pseudonym = Privacy("anonymized", console_secret(world["redis"], world["prefix"])).person
    try:
        # Overview: the outcome counts of the last 30 days are the database's.
        expected = counts_by_mode(store, NOW - timedelta(days=30))
        assert expected["llm"] == 2 and "old" not in expected                     # the 40-day-old one is out
        shown = {m: int(page.locator(f'#by-mode td[data-mode="{m}"]').inner_text()) for m in expected}
        assert shown == expected
        assert page.locator('[data-kpi="questions"]').inner_text() == str(sum(expected.values()) - expected["greeting"])
        assert page.locator("svg.chart").count() == 5
        assert page.locator('svg.chart rect.bar[data-series="no-evidence"]').count() == 3      # three days with some
        assert page.locator('nav.main a.on').inner_text() == "Overview"
        shot(page, "overview")

        # Questions: everything, then filtered by outcome and by feedback.
        page.goto(f"{url}/admin/questions")
        assert page.locator("#questions tbody tr").count() == sum(expected.values())
        assert "person-" in page.locator("#questions tbody").inner_text()           # anonymized by default
        assert "ana@northwind.example" not in page.content()
        shot(page, "questions")
        page.select_option('select[name="outcome"]', "no-evidence")
        page.click("form.filters button")
        assert page.locator("#questions tbody tr").count() == expected["no-evidence"]
        page.goto(f"{url}/admin/questions?feedback=not_helpful")
        assert cells(page, "#questions tbody tr td:nth-child(4)") == ["How do we deploy billing?"]

        # A drill-down: the answer, what was retrieved with its scores, tokens and cost.
        page.goto(f"{url}/admin/questions/{seeded['ids']['vpn']}")
        assert page.locator("#question-text").inner_text() == "How do I set up the VPN on <b>Linux</b>?"
        assert page.locator("#answer-text").inner_text() == "Install WireGuard, then import the profile from the portal [1]."
        assert page.locator('#retrieved td[data-doc="handbook/vpn.md"]').inner_text() == "0.821"
        assert page.locator('#retrieved td[data-doc="handbook/wifi.md"]').inner_text() == "0.411"
        assert page.locator('#usage td[data-fact="prompt_tokens"]').inner_text() == "1\u202f234"
        assert page.locator('#usage td[data-fact="completion_tokens"]').inner_text() == "210"
        assert page.locator('#usage td[data-fact="cost"]').inner_text() == "0.0032"
        assert page.locator('#timings td[data-stage="generation"]').inner_text() == "1.32 s"
        assert "VPN setup" in page.locator("#cited").inner_text()
        assert pseudonym("UBEN") in page.content()                                  # an audience member
        shot(page, "question")

        # Unanswered: the no-evidence questions by wording, and the same rows in the CSV.
        page.goto(f"{url}/admin/unanswered")
        rows = page.locator("#unanswered tbody tr")
        assert rows.count() == 2
        listed = {r.locator("td").nth(0).inner_text(): int(r.locator("td").nth(1).inner_text()) for r in rows.all()}
        assert listed == {"where is the parking garage policy": 2, "Who caters the Friday lunch?": 1}
        assert page.locator('[data-kpi="no_evidence_total"]').inner_text() == str(expected["no-evidence"])
        shot(page, "unanswered")
        exported = page.request.get(f"{url}/admin/unanswered.csv?days=30")
        assert exported.status == 200 and exported.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(exported.text())))
        assert {r["question"]: int(r["times_asked"]) for r in table} == listed

        # Feedback: the documents cited in liked and disliked answers.
        page.goto(f"{url}/admin/feedback")
        assert page.locator('#most-liked td[data-doc="handbook/vpn.md"]').inner_text() == "2"
        assert page.locator('#most-disliked td[data-doc="runbooks/old-deploy.md"]').inner_text() == "1"
        assert page.locator('[data-kpi="helpful"]').inner_text() == "2"
        shot(page, "feedback")

        # Proposals: pending, decided and executed, with who and when; nothing to click that decides.
        page.goto(f"{url}/admin/proposals")
        pending = page.locator(f'#pending tr[data-proposal="{seeded["pending"].id}"]').inner_text()
        assert "restart_service" in pending and pseudonym("UBEN") in pending
        assert seeded["pending"].created_at.strftime("%Y-%m-%d %H:%M") in pending
        done = page.locator(f'#executed tr[data-proposal="{seeded["done"].id}"]').inner_text()
        assert "succeeded" in done and pseudonym("UANA") in done
        assert seeded["done"].decided_at.strftime("%Y-%m-%d %H:%M") in done
        assert "failed" in page.locator(f'#executed tr[data-proposal="{seeded["broken"].id}"]').inner_text()
        assert page.locator("main button, main form").count() == 0
        shot(page, "proposals")

        # Sources: none configured here; what answers drew on, by index source.
        page.goto(f"{url}/admin/sources")
        assert "No sources are configured" in page.locator("main").inner_text()
        assert "fs:handbook" in page.locator("#retrieved-sources").inner_text()
        shot(page, "sources")

        # Workers: one alive, the queue's depth, the last day's failures.
        health = Health(world["redis"], world["prefix"], name="worker-browser-1")
        health.tick()
        health.publish()
        world["redis"].rpush(world["queue"], "task-1", "task-2")
        page.goto(f"{url}/admin/workers")
        assert page.locator('[data-kpi="workers_alive"]').inner_text() == "1"
        assert page.locator(f'[data-kpi="queue:{world["queue"]}"]').inner_text() == "2"
        assert "worker-browser-1" in page.locator("#workers").inner_text()
        assert "Why did the model time out?" in page.locator("#failed-questions").inner_text()
        assert "restart_service" in page.locator("#failed-proposals").inner_text()
        shot(page, "workers")
    finally:
        context.close()


def test_a_link_works_once_and_not_after_it_expires(world):
    url = link(world)
    unfurler = world["chromium"].new_context()       # opening it (a link preview, a mail scanner) spends nothing
    try:
        page = unfurler.new_page()
        assert page.goto(url).status == 200 and OPERATOR in page.locator(".signin").inner_text()
        shot(page, "confirm-link")
        assert page.goto(f"{world['url']}/admin/").url == f"{world['url']}/admin/login"
    finally:
        unfurler.close()
    first = world["chromium"].new_context()
    try:
        confirm(first.new_page(), url)
    finally:
        first.close()
    second = world["chromium"].new_context()
    try:
        page = second.new_page()
        response = page.goto(url)
        assert response.status == 403 and "used already" in page.locator(".alert").inner_text()
        page.goto(f"{world['url']}/admin/")
        assert page.url == f"{world['url']}/admin/login"                       # still signed out
        shot(page, "login")

        short = link(world, "--ttl", "1")
        time.sleep(1.2)
        response = page.goto(short)
        assert response.status == 403 and "expired" in page.locator(".alert").inner_text()
    finally:
        second.close()


def test_a_post_without_the_csrf_token_is_refused(world):
    context, page = signed_in(world)
    try:
        refused = context.request.post(f"{world['url']}/admin/settings/privacy", form={"privacy": "full"})
        assert refused.status == 403
        assert refused.headers["x-frame-options"] == "DENY"
        page.reload()
        assert page.locator('select[name="privacy"]').input_value() == "anonymized"     # unchanged
        headers = page.goto(f"{world['url']}/admin/").headers
        assert headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in headers["content-security-policy"]
    finally:
        context.close()


def test_privacy_off_hides_question_text_and_full_shows_people(world):
    url, seeded = world["url"], world["seeded"]
    context, page = signed_in(world)

    def choose(mode: str) -> None:
        page.goto(f"{url}/admin/")
        page.select_option('select[name="privacy"]', mode)
        page.click('form[action="/admin/settings/privacy"] button')
        assert page.locator(".who .badge").inner_text() == f"privacy: {mode}"

    try:
        choose("off")
        page.goto(f"{url}/admin/questions")
        listing = page.locator("main").inner_text()
        assert "VPN" not in listing and "parking" not in listing and "person-" not in listing
        assert page.locator("#questions tbody tr").count() == 10
        shot(page, "questions-privacy-off")
        page.goto(f"{url}/admin/questions/{seeded['ids']['vpn']}")
        assert page.locator("#question-text").count() == 0 and page.locator("#answer-text").count() == 0
        assert page.locator('#usage td[data-fact="prompt_tokens"]').inner_text() == "1\u202f234"   # metadata stays
        page.goto(f"{url}/admin/unanswered")
        assert "parking" not in page.locator("main").inner_text()
        assert cells(page, "#unanswered tbody tr td:nth-child(2)") == ["2", "1"]
        exported = page.request.get(f"{url}/admin/unanswered.csv")
        assert exported.text().splitlines()[0] == "times_asked,last_asked" and "parking" not in exported.text()

        choose("full")
        page.goto(f"{url}/admin/questions")
        assert "UANA · ana@northwind.example" in page.locator("#questions").inner_text()
    finally:
        choose("anonymized")
        context.close()


def test_entra_admits_members_of_the_admin_groups_only(world):
    base, entra = world["entra_url"], world["entra"]

    def sign_in_as(email: str):
        context = world["chromium"].new_context(ignore_https_errors=True, viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.goto(f"{base}/admin/questions")
        assert page.url == f"{base}/admin/login"
        page.click("text=Sign in with Microsoft")
        assert page.url.startswith(f"{entra.origin}/login/{entra.tenant_id}/oauth2/v2.0/authorize?")
        with page.expect_response(lambda r: "/admin/auth/callback" in r.url) as callback:
            page.click(f"a.account:text('{email}')")
        return context, page, callback.value

    context, page, callback = sign_in_as("ana@contoso.com")
    try:
        assert callback.status == 303
        assert page.url == f"{base}/admin/"
        assert page.locator(".who .user").inner_text() == "ana@contoso.com"
        assert page.locator('[data-kpi="questions"]').inner_text() != ""
        shot(page, "overview-entra")
    finally:
        context.close()

    context, page, callback = sign_in_as("ben@contoso.com")
    try:
        assert callback.status == 403
        assert "not a member of the groups" in page.locator(".alert").inner_text()
        shot(page, "not-an-operator")
        page.goto(f"{base}/admin/")
        assert page.url == f"{base}/admin/login"                                 # no session was made
    finally:
        context.close()
    assert entra.sign_ins[-2:] == ["ana@contoso.com", "ben@contoso.com"]

    # No link gets into a console that signs people in with Microsoft.
    refused = world["entra_cli"]("admin", "link", "--as", "Ana")
    assert refused.exit_code == 2 and "signs people in with Microsoft" in refused.stderr
    context = world["chromium"].new_context()
    try:
        page = context.new_page()
        page.goto(f"{base}/admin/login")
        assert "Sign in with Microsoft" in page.content()
        shot(page, "login-entra")
    finally:
        context.close()
