"""EntraProvider with the real msal and requests against the loopback Entra/Graph."""

from __future__ import annotations

import pytest

from chatops.errors import IdentityUnavailable
from connectors.identity.base import UnknownUser
from connectors.identity.entra import EntraProvider


def provider(fake, *, client_secret=None, sleeps=None, sleep=None, **kw) -> EntraProvider:
    """A provider on the fake; ``sleeps`` (a list) records back-off delays instead of sleeping."""
    if sleep is None:
        sleep = sleeps.append if sleeps is not None else (lambda seconds: None)
    return EntraProvider(fake.tenant_id, fake.client_id, client_secret or fake.client_secret,
                         http_client=fake.session(), sleep=sleep, **kw)


def member_of_requests(fake) -> list[str]:
    return [p for p in fake.paths if "/transitiveMemberOf/" in p]


def test_groups_are_collected_across_pages_by_object_id_only(fake_entra):
    p = provider(fake_entra).by_email("Ana@Example.com")
    assert p.email == "ana@example.com"
    assert p.display_name == "Ana Ops"
    # Display names ("engineering", "sre", ...) are anyone's to choose: never part of the groups.
    assert p.groups == {"g-1", "g-2", "g-3", "g-4", "g-5"}
    pages = member_of_requests(fake_entra)
    assert len(pages) == 3  # 5 groups, 2 per page, following @odata.nextLink
    assert "$skiptoken" not in pages[0] and all("$skiptoken" in p for p in pages[1:])


def test_group_ids_are_lower_cased_as_graph_writes_them(fake_entra):
    fake_entra.users["upper@example.com"] = {
        "id": "id-up", "displayName": "Upper",
        "groups": [{"id": "7F0C2A4E-3C1D-4B8E-9A51-0D2F6C7B8E91", "displayName": "sre"}]}
    p = provider(fake_entra).by_email("upper@example.com")
    assert p.groups == {"7f0c2a4e-3c1d-4b8e-9a51-0d2f6c7b8e91"}


def test_user_without_groups_resolves_with_none(fake_entra):
    assert provider(fake_entra).by_email("lonely@example.com").groups == frozenset()


def test_token_is_fetched_once_and_reused(fake_entra):
    entra = provider(fake_entra)
    entra.by_email("ana@example.com")
    entra.by_email("lonely@example.com")
    assert fake_entra.token_requests == 1
    assert fake_entra.graph_requests == (1 + 3) + (1 + 1)  # user + group pages, all with that token


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_is_retried_and_retry_after_honoured(fake_entra, status):
    sleeps: list[float] = []
    fake_entra.throttle_next(2, retry_after=3, status=status)
    p = provider(fake_entra, sleeps=sleeps).by_email("ana@example.com")
    assert "g-1" in p.groups
    assert sleeps == ([3.0, 3.0] if status == 429 else [0.5, 1.0])  # 503 without Retry-After: backoff


def test_retry_after_is_capped(fake_entra):
    sleeps: list[float] = []
    fake_entra.throttle_next(1, retry_after=120)
    provider(fake_entra, sleeps=sleeps, max_retry_after=5).by_email("ana@example.com")
    assert sleeps == [5]


def test_throttling_beyond_max_attempts_is_unavailable(fake_entra):
    sleeps: list[float] = []
    fake_entra.throttle_next(10, retry_after=1)
    with pytest.raises(IdentityUnavailable, match="429"):
        provider(fake_entra, sleeps=sleeps, max_attempts=3).by_email("ana@example.com")
    assert fake_entra.graph_requests == 3
    assert sleeps == [1.0, 1.0]


def test_unknown_user(fake_entra):
    with pytest.raises(UnknownUser):
        provider(fake_entra).by_email("nobody@example.com")
    graph = [p for p in fake_entra.paths if p.startswith("GET /graph/")]
    assert graph[0].startswith("GET /graph/v1.0/users/nobody@example.com?")
    assert "$filter=mail eq 'nobody@example.com'" in graph[1]


def test_user_whose_upn_differs_is_found_by_mail(fake_entra):
    p = provider(fake_entra).by_email("guest@partner.example")
    assert p.groups == {"g-guests"}
    assert p.display_name == "Guest Person"
    assert any("$filter=mail eq 'guest@partner.example'" in path for path in fake_entra.paths)


def test_quote_in_email_is_escaped_in_the_filter(fake_entra):
    fake_entra.users["o'brien@example.com"] = {"id": "id-ob", "displayName": "O'Brien", "upn": "ob@x",
                                                "groups": [{"id": "g-ob", "displayName": "irish"}]}
    assert provider(fake_entra).by_email("o'brien@example.com").groups == {"g-ob"}


def test_wrong_client_secret_is_unavailable(fake_entra):
    with pytest.raises(IdentityUnavailable, match="invalid_client"):
        provider(fake_entra, client_secret="wrong").by_email("ana@example.com")
    assert fake_entra.token_requests == 1
    assert fake_entra.graph_requests == 0


def test_graph_down_is_unavailable(fake_entra):
    entra = provider(fake_entra, max_attempts=2)
    entra.by_email("ana@example.com")  # token cached, then Graph goes away
    fake_entra.stop()
    with pytest.raises(IdentityUnavailable, match="unreachable"):
        entra.by_email("ana@example.com")


def test_user_deleted_between_lookup_and_group_listing(fake_entra):
    def sleep(seconds):  # while the provider backs off, the account is deleted
        fake_entra.users.pop("ana@example.com", None)

    fake_entra.throttle_next(1, match="/transitiveMemberOf/")  # the user lookup itself succeeds
    with pytest.raises((UnknownUser, IdentityUnavailable)):
        provider(fake_entra, sleep=sleep).by_email("ana@example.com")


def test_bad_tenant_is_reported_as_unavailable_at_lookup(fake_entra):
    entra = EntraProvider("no-such-tenant", fake_entra.client_id, fake_entra.client_secret,
                          http_client=fake_entra.session(), sleep=lambda s: None)
    with pytest.raises(IdentityUnavailable):
        entra.by_email("ana@example.com")


def test_an_authority_that_never_answers_fails_the_lookup_in_bounded_time():
    import socket
    import threading
    import time

    from connectors.microsoft.graph import GraphClient, GraphError

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []

    def hold() -> None:
        try:
            held.append(listener.accept())   # and never answer
        except OSError:
            pass

    threading.Thread(target=hold, daemon=True).start()
    port = listener.getsockname()[1]
    client = GraphClient("tenant-1", "client-1", "secret-1", authority_host=f"http://127.0.0.1:{port}",
                         graph_url=f"http://127.0.0.1:{port}/v1.0", instance_discovery=False, timeout=0.5,
                         max_attempts=1, sleep=lambda s: None)
    started = time.monotonic()
    with pytest.raises(GraphError):
        client.get("/users/ana@example.com")
    assert time.monotonic() - started < 5
    listener.close()


def test_the_token_scope_follows_the_graph_url():
    from connectors.microsoft.graph import GRAPH_SCOPE, scope_for

    assert scope_for("https://graph.microsoft.com/v1.0") == GRAPH_SCOPE
    assert scope_for("https://graph.microsoft.us/v1.0") == "https://graph.microsoft.us/.default"
    assert scope_for("https://dod-graph.microsoft.us/beta") == "https://dod-graph.microsoft.us/.default"
