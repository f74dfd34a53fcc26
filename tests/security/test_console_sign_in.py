"""Finding 12: signing in to the operator console.

* ``CHATOPS_ADMIN_GROUPS`` goes through the ``groups:`` aliases like every other group setting,
  and only Entra object ids will do (the console's Microsoft sign-in knows people's groups by id):
  a name that is neither stops the start.
* A one-time link is not spent by whatever fetches it first (a link unfurler, a mail scanner): its
  GET shows a confirm button, only the POST (with the page's CSRF token) spends it.
* ``chatops admin link --as NAME`` names the person: the session shows them and the audit trail
  records their sign-in and what they change.

The real CLI makes the links; the console is the composition root's, over the real Redis and a
SQLite audit trail.
"""

from __future__ import annotations

import getpass
import re
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from starlette.testclient import TestClient

from chatops.errors import ConfigError
from chatops.settings import Settings
from chatops.store import Store
from chatops_app.container import Container
from console.auth import SESSION_COOKIE
from tests.integration.test_cli import Cli, base_env
from tests.settings_env import clear_settings_env, settings_env_names

OPERATORS = "0f3c9a2e-5b1d-4e7a-9c2f-1a2b3c4d5e6f"
AUDITORS = "5E5E5E5E-0000-4000-8000-000000000001"
BASE = "http://testserver"


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch, tmp_path):
    clear_settings_env(monkeypatch)
    monkeypatch.chdir(tmp_path)


# -- CHATOPS_ADMIN_GROUPS ------------------------------------------------------------------------


def _config(tmp_path, groups: dict) -> str:
    path = tmp_path / "chatops.yml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    return str(path)


def test_admin_groups_resolve_through_the_group_aliases(tmp_path):
    settings = Settings.load(CHATOPS_CONFIG=_config(tmp_path, {"operators": OPERATORS}),
                             CHATOPS_ADMIN_GROUPS=f"operators, {AUDITORS}")
    assert settings.admin_groups == {OPERATORS, AUDITORS.lower()}


@pytest.mark.parametrize("groups, admin, named", [
    ({}, "Operators", "'Operators' is neither an alias"),                          # a display name
    ({"ops": "ops-team"}, "ops", "'ops' (ops-team) is not an Entra object id"),     # a directory group
    ({"operators": OPERATORS}, "operators,oprators", "'oprators' is neither an alias"),   # a typo
])
def test_an_admin_group_that_is_no_object_id_stops_the_start(tmp_path, groups, admin, named):
    with pytest.raises(ConfigError) as refused:
        Settings.load(CHATOPS_CONFIG=_config(tmp_path, groups), CHATOPS_ADMIN_GROUPS=admin)
    message = str(refused.value)
    assert message.startswith("CHATOPS_ADMIN_GROUPS: ") and named in message and "\n" not in message


# -- sign-in links -------------------------------------------------------------------------------


@pytest.fixture
def console(tmp_path, redis_prefix):
    """The console of a deployment without Entra, the CLI that makes its links, and its audit trail."""
    env = base_env(CHATOPS_KEY_PREFIX=redis_prefix, CHATOPS_DATA_DIR=str(tmp_path / "data"), CHATOPS_PUBLIC_URL=BASE)
    settings = Settings.load(**{k: v for k, v in env.items() if v is not None and k.upper() in settings_env_names()})
    container = Container(settings)
    client = TestClient(container.console_app(), base_url=BASE)
    store = Store.for_url(settings.resolved_database_url)
    try:
        yield type("Console", (), {"cli": Cli(env), "client": client, "store": store,
                                   "browser": lambda: TestClient(container.console_app(), base_url=BASE)})
    finally:
        store.close()
        container.close()


def make_link(console, *args: str) -> str:
    result = console.cli("admin", "link", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def confirm_form(page: str) -> dict[str, str]:
    """The fields of the page's sign-in form (which must POST back to the link's own path)."""
    form = re.search(r'<form method="post" action="/admin/auth/link">(.*?)</form>', page, re.DOTALL)
    assert form, page
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(1)))


def console_events(store: Store) -> list[dict]:
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    return [e for e in store.export(since) if e["kind"].startswith("console_")]


def test_fetching_a_sign_in_link_does_not_spend_it(console):
    url = make_link(console, "--as", "Ana Ops")
    for fetcher in (console.browser(), console.browser()):       # an unfurler, then a mail scanner
        seen = fetcher.get(url, follow_redirects=False)
        assert seen.status_code == 200 and "Sign in" in seen.text
        assert f"{SESSION_COOKIE}=" not in seen.headers.get("set-cookie", "")
        assert fetcher.get(f"{BASE}/admin/", follow_redirects=False).headers["location"] == "/admin/login"
    person = console.client
    page = person.get(url)
    assert page.status_code == 200 and "Ana Ops" in page.text
    signed_in = person.post(f"{BASE}/admin/auth/link", data=confirm_form(page.text), follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin/"
    assert person.get(f"{BASE}/admin/").status_code == 200
    spent = console.browser().get(url)
    assert spent.status_code == 403 and "used already" in spent.text


def test_the_confirmation_needs_the_pages_csrf_token(console):
    url = make_link(console, "--as", "Ana Ops")
    page = console.client.get(url)
    fields = confirm_form(page.text)
    # another browser (a cross-site form has no cookie of ours), a guessed token, no token
    attempts = [(console.browser(), fields), (console.client, {**fields, "csrf": "guess"}),
                (console.client, {"t": fields["t"]})]
    for client, data in attempts:
        refused = client.post(f"{BASE}/admin/auth/link", data=data, follow_redirects=False)
        assert refused.status_code == 403 and f"{SESSION_COOKIE}=" not in refused.headers.get("set-cookie", "")
    assert console_events(console.store) == []
    done = console.client.post(f"{BASE}/admin/auth/link", data=fields, follow_redirects=False)
    assert done.status_code == 303                                     # the link was not spent by them


def test_a_link_names_the_person_it_was_made_for(console):
    url = make_link(console, "--as", "Ana Ops")
    fields = confirm_form(console.client.get(url).text)
    console.client.post(f"{BASE}/admin/auth/link", data=fields)
    home = console.client.get(f"{BASE}/admin/").text
    assert re.search(r'<span class="user"[^>]*>Ana Ops</span>', home)
    csrf = re.search(r'name="csrf" value="([^"]+)"', home).group(1)
    assert console.client.post(f"{BASE}/admin/settings/privacy", data={"privacy": "off", "csrf": csrf},
                               follow_redirects=False).status_code == 303
    events = console_events(console.store)
    assert [(e["kind"], e["detail"]) for e in events] == [
        ("console_sign_in", {"via": "link", "person": "Ana Ops"}),
        ("console_privacy", {"via": "link", "person": "Ana Ops", "privacy": "off"})]


def test_the_name_is_part_of_the_links_signature(console):
    url = make_link(console, "--as", "Ana Ops")
    link_id, expires, _who, mac = url.split("t=", 1)[1].split(".")
    forged = f"{BASE}/admin/auth/link?t={link_id}.{expires}.{'QmVu'}.{mac}"    # "Ben"
    refused = console.client.get(forged)
    assert refused.status_code == 403 and "signature" in refused.text
    for bad in ("", " ", "x" * 65, "Ana\nOps"):
        made = console.cli("admin", "link", "--as", bad)
        assert made.exit_code == 2 and "--as" in made.stderr


def test_a_link_without_as_names_the_operating_system_user(console):
    url = make_link(console)
    console.client.post(f"{BASE}/admin/auth/link", data=confirm_form(console.client.get(url).text))
    assert [e["detail"]["person"] for e in console_events(console.store)] == [getpass.getuser()]
