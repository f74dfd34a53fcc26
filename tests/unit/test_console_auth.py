"""console/auth.py and the console's HTTP rules: sign-in links (signature, expiry, one use), sessions,
CSRF, security headers, privacy. Redis is a small in-memory stand-in (the commands these use)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from chatops.store import Store
from console.app import ConsoleConfig, ConsoleDeps, console_routes
from console.auth import SECURITY_HEADERS, SESSION_COOKIE, LinkRefused, Links, Sessions, console_secret, cookie_args
from console.html import Markup, escape, html
from console.privacy import Privacy, PrivacySetting


class MemoryRedis:
    """SET (NX, EX), GET, DELETE and a pipeline of them; expiry is not simulated."""

    def __init__(self):
        self.data: dict[str, bytes] = {}
        self.ttl: dict[str, int] = {}

    def set(self, key, value, nx=False, ex=None):
        if nx and key in self.data:
            return None
        self.data[key] = value if isinstance(value, bytes) else str(value).encode()
        if ex is not None:
            self.ttl[key] = ex
        return True

    def get(self, key):
        return self.data.get(key)

    def delete(self, *keys):
        return sum(self.data.pop(k, None) is not None for k in keys)

    def pipeline(self, transaction=True):
        redis, calls = self, []

        class Pipe:
            def __getattr__(self, name):
                return lambda *a, **kw: calls.append((name, a, kw))

            def execute(self):
                return [getattr(redis, name)(*a, **kw) for name, a, kw in calls]
        return Pipe()


class Clock:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- links --------------------------------------------------------------------------------------


def test_a_link_works_once():
    r, clock = MemoryRedis(), Clock()
    links = Links(b"k" * 32, r, "p", clock=clock)
    url = links.url("https://chatops.example/", "Ana", ttl=60)
    assert url.startswith("https://chatops.example/admin/auth/link?t=")
    token = url.split("t=", 1)[1]
    assert links.check(token) == links.check(token)                  # looking at it uses nothing up
    grant = links.consume(token)
    assert grant.person == "Ana"
    assert r.get(f"p:console:link:{grant.id}") is not None and r.ttl[f"p:console:link:{grant.id}"] == 120
    for again in (links.check, links.consume):
        with pytest.raises(LinkRefused, match="used already"):
            again(token)


def test_a_link_expires():
    clock = Clock()
    links = Links(b"k" * 32, MemoryRedis(), "p", clock=clock)
    token = links.token("Ana", ttl=900)
    clock.t += 900
    with pytest.raises(LinkRefused, match="expired"):
        links.consume(token)


def test_a_link_is_signed_for_this_console_and_its_expiry():
    r, clock = MemoryRedis(), Clock()
    token = Links(b"k" * 32, r, "p", clock=clock).token("Ana", ttl=60)
    with pytest.raises(LinkRefused, match="signature"):
        Links(b"another secret", r, "p", clock=clock).consume(token)
    link_id, expires, who, mac = token.split(".")
    with pytest.raises(LinkRefused, match="signature"):       # a longer life is a different link
        Links(b"k" * 32, r, "p", clock=clock).consume(f"{link_id}.{int(expires) + 86400}.{who}.{mac}")
    for junk in ("", "abc", "a.b.c", "a.1.", "a.1..x", "." * 3, "x" * 600):
        with pytest.raises(LinkRefused, match="not a sign-in link|signature"):
            Links(b"k" * 32, r, "p", clock=clock).consume(junk)
    assert not [k for k in r.data if ":link:" in k]          # nothing refused was used up


def test_the_secret_is_made_once_and_shared():
    r = MemoryRedis()
    first = console_secret(r, "p")
    assert len(first) >= 48 and console_secret(r, "p") == first      # the CLI and the web agree
    assert console_secret(r, "p", "configured") == b"configured"


# -- sessions -----------------------------------------------------------------------------------


def test_sessions_keep_a_hash_of_their_id_and_expire_with_the_setting():
    r = MemoryRedis()
    sessions = Sessions(r, "p", ttl=3600)
    s = sessions.create("ana@contoso.com", "entra")
    assert len(s.id) >= 40 and len(s.csrf) >= 40
    assert not any(s.id in k for k in r.data) and list(r.ttl.values()) == [3600]
    again = sessions.get(s.id)
    assert (again.user, again.via, again.csrf) == ("ana@contoso.com", "entra", s.csrf)
    assert sessions.get("forged") is None and sessions.get(None) is None and sessions.get("x" * 500) is None
    sessions.end(s.id)
    assert sessions.get(s.id) is None


def test_csrf_tokens_must_match_exactly():
    s = Sessions(MemoryRedis(), "p", ttl=60).create("u", "link")
    assert s.csrf_ok(s.csrf)
    assert not s.csrf_ok(None) and not s.csrf_ok("") and not s.csrf_ok(s.csrf[:-1]) and not s.csrf_ok(s.csrf + "x")


def test_an_entra_flow_is_taken_once():
    sessions = Sessions(MemoryRedis(), "p", ttl=60)
    flow_id = sessions.keep_flow({"state": "s1", "code_verifier": "v"})
    assert sessions.take_flow(flow_id) == {"state": "s1", "code_verifier": "v"}
    assert sessions.take_flow(flow_id) is None and sessions.take_flow("other") is None


def test_cookies_are_http_only_lax_and_secure_on_https():
    assert cookie_args("https://chatops.example") == {"httponly": True, "samesite": "lax", "secure": True, "path": "/admin"}
    assert cookie_args("http://127.0.0.1:3000")["secure"] is False


# -- privacy ------------------------------------------------------------------------------------


def test_privacy_modes():
    full, anon, off = (Privacy(m, b"key") for m in ("full", "anonymized", "off"))
    assert full.person("U123", "ana@contoso.com") == "U123 · ana@contoso.com" and full.text("q?") == "q?"
    pseudonym = anon.person("U123", "ana@contoso.com")
    assert re.fullmatch(r"person-[0-9a-f]{8}", pseudonym)
    assert anon.person("U123") == pseudonym and anon.person("U999") != pseudonym and anon.text("q?") == "q?"
    assert Privacy("anonymized", b"other key").person("U123") != pseudonym
    assert off.person("U123", "a@b") is None and off.text("q?") is None
    with pytest.raises(ValueError):
        Privacy("some", b"k")


def test_the_privacy_setting_is_shared_through_redis():
    r = MemoryRedis()
    setting = PrivacySetting(r, "p", "anonymized", b"k")
    assert setting.current().mode == "anonymized"
    PrivacySetting(r, "p", "anonymized", b"k").set("off")
    assert setting.current().mode == "off"
    with pytest.raises(ValueError):
        setting.set("everything")


def test_html_escapes_everything_not_built_here():
    out = html("<td>{a}</td>{b}", a='<img src=x onerror="alert(1)">', b=Markup("<br>"))
    assert out == '<td>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</td><br>'
    assert escape(None) == "" and escape("'") == "&#x27;"


# -- the HTTP rules ---------------------------------------------------------------------------


@pytest.fixture
def console(tmp_path):
    r = MemoryRedis()
    store = Store.for_url(f"sqlite:///{tmp_path / 'chatops.db'}")    # sign-ins are audit events
    config = ConsoleConfig(base_url="http://testserver", key_prefix="p", session_ttl=600, privacy="anonymized")
    deps = ConsoleDeps(config=config, redis=r, store=lambda: store, answers=lambda: None,
                       now=lambda: datetime(2024, 5, 1, tzinfo=timezone.utc))
    client = TestClient(Starlette(routes=list(console_routes(deps))), base_url="http://testserver")
    yield client, r
    store.close()


def _confirm(client, link: str):
    """Open a sign-in link and press its button."""
    page = client.get(link, follow_redirects=False)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    return client.post("/admin/auth/link", data=fields, follow_redirects=False)


def _signed_in(client, r) -> str:
    link = Links(console_secret(r, "p"), r, "p").url("http://testserver", "Ana")
    resp = _confirm(client, link)
    assert resp.status_code == 303 and resp.headers["location"] == "/admin/"
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie and "Secure" not in cookie
    return Sessions(r, "p", 600).get(client.cookies[SESSION_COOKIE]).csrf


def test_every_admin_response_carries_the_security_headers(console):
    client, r = console
    for path in ("/admin", "/admin/", "/admin/login", "/admin/questions", "/admin/console.css", "/admin/nope",
                 "/admin/auth/link?t=bad"):
        resp = client.get(path, follow_redirects=False)
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (path, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    for part in ("default-src 'none'", "style-src 'self'", "img-src 'self' data:", "form-action 'self'",
                 "frame-ancestors 'none'"):
        assert part in csp


def test_without_a_session_pages_send_to_the_sign_in_page(console):
    client, _ = console
    for path in ("/admin/", "/admin/questions", "/admin/questions/1", "/admin/unanswered.csv", "/admin/workers"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/admin/login", path
    page = client.get("/admin/login").text
    assert "chatops admin link" in page and "Sign in with Microsoft" not in page


def test_a_refused_link_is_403_with_the_reason(console):
    client, r = console
    link = Links(console_secret(r, "p"), r, "p").url("http://testserver", "Ana")
    assert _confirm(client, link).status_code == 303
    client.cookies.clear()
    again = client.get(link, follow_redirects=False)
    assert again.status_code == 403 and "used already" in again.text and SESSION_COOKIE not in again.headers.get("set-cookie", "")


def test_a_post_needs_the_sessions_csrf_token(console):
    client, r = console
    csrf = _signed_in(client, r)
    assert client.post("/admin/settings/privacy", data={"privacy": "off"}).status_code == 403
    assert client.post("/admin/settings/privacy", data={"privacy": "off", "csrf": "guess"}).status_code == 403
    assert PrivacySetting(r, "p", "anonymized", b"").current().mode == "anonymized"
    done = client.post("/admin/settings/privacy", data={"privacy": "off", "csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert PrivacySetting(r, "p", "anonymized", b"").current().mode == "off"
    client.cookies.clear()
    assert client.post("/admin/settings/privacy", data={"privacy": "full", "csrf": csrf}).status_code == 403


def test_signing_out_ends_the_session(console):
    client, r = console
    csrf = _signed_in(client, r)
    sid = client.cookies[SESSION_COOKIE]
    out = client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/admin/login?m=out"
    assert Sessions(r, "p", 600).get(sid) is None


def test_a_sign_in_link_is_made_only_where_entra_does_not_sign_people_in():
    from console.auth import sign_in_link
    from chatops.errors import ConfigError

    r = MemoryRedis()
    url = sign_in_link(r, "chatops", base_url="https://ops.example/", person="Ada", ttl=600,
                       configured_secret="s" * 32, entra_signs_in=False)
    token = url.split("?t=", 1)[1]
    assert url.startswith("https://ops.example/admin/auth/link?t=")
    assert Links(b"s" * 32, r, "chatops").check(token).person == "Ada"
    with pytest.raises(ConfigError, match=r"signs people in with Microsoft here .*open https://ops.example/admin/"):
        sign_in_link(r, "chatops", base_url="https://ops.example", person="Ada", ttl=600, configured_secret=None,
                     entra_signs_in=True)
