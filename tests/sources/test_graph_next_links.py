"""The app's bearer token never follows a next link off its own origin: Graph's paging
(``@odata.nextLink``, for people's groups and for a SharePoint source's listings, delta and
permissions) stays on the configured Graph origin, SharePoint REST's (``odata.nextLink``) on the
site's own origin. The loopback Graph and SharePoint hand out next links on another host (as a
tampered or misrouted answer would); that host records whatever reaches it."""

from __future__ import annotations

import pytest

from chatops.errors import IdentityUnavailable
from connectors.identity.entra import EntraProvider
from connectors.microsoft.graph import ForeignHost, GraphClient, origin_of
from connectors.sources.base import SourceUnavailable
from standins._loopback import LoopbackServer, Reply, Request
from standins.fake_entra import FakeEntra
from tests.sources.test_sharepoint_sync import build

GROUPS = [{"id": f"g-{n}", "displayName": f"group {n}"} for n in range(5)]


class Elsewhere(LoopbackServer):
    """Another host: answers an empty page to anything, and keeps every request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
        return Reply(200, {"value": [], "d": {"results": []}})


@pytest.fixture
def elsewhere():
    with Elsewhere() as server:
        yield server


def test_a_persons_groups_are_not_paged_from_another_host(elsewhere):
    with FakeEntra(users={"ana@contoso.com": {"id": "u-ana", "groups": GROUPS}}, page_size=2) as entra:
        entra.next_link_base = elsewhere.origin
        provider = EntraProvider(entra.tenant_id, entra.client_id, entra.client_secret, http_client=entra.session(),
                                 sleep=lambda s: None)
        with pytest.raises(IdentityUnavailable, match="another host"):
            provider.by_email("ana@contoso.com")         # fail closed: not two groups of five
    assert elsewhere.requests == []


def test_another_port_on_the_same_host_is_another_origin(loopback_tls):
    """Graph served as itself on 127.0.0.1 over TLS; the next link names the same scheme and host,
    another port."""
    entra = FakeEntra(users={"ana@contoso.com": {"id": "u-ana", "groups": GROUPS}}, page_size=2, direct=True)
    entra.tls = loopback_tls
    other = Elsewhere()
    other.tls = loopback_tls
    with entra, other:
        client = GraphClient(entra.tenant_id, entra.client_id, entra.client_secret, authority_host=entra.login_base,
                             graph_url=f"{entra.graph_base}/v1.0", instance_discovery=False)
        path = "/users/u-ana/transitiveMemberOf/microsoft.graph.group"
        assert [g["id"] for g in client.get_all(path)] == [g["id"] for g in GROUPS]
        entra.next_link_base = f"{other.origin}/graph"
        with pytest.raises(ForeignHost, match=rf"another host \(https://127\.0\.0\.1:{other.port}\)"):
            client.get_all(path)
    assert other.requests == []


def test_origins_compare_scheme_host_and_port():
    assert origin_of("https://Graph.Microsoft.com/v1.0/x?a=b") == origin_of("https://graph.microsoft.com:443/y")
    assert origin_of("http://graph.microsoft.com/v1.0") != origin_of("https://graph.microsoft.com/v1.0")
    assert origin_of("https://graph.microsoft.com:8443/") != origin_of("https://graph.microsoft.com/")
    for odd in ("https://graph.microsoft.com@evil.example/", "https://graph.microsoft.com:x/", "ftp://graph/",
                "https:///v1.0", "graph.microsoft.com/v1.0"):
        assert origin_of(odd) is None, odd


def test_a_sharepoint_delta_link_to_another_host_stops_the_sync_without_the_token(tenant, elsewhere):
    build(tenant)                                         # four items: two delta pages of three
    tenant.entra.next_link_base = elsewhere.origin
    report = tenant.sync(tenant.source())
    assert report.error and "another host" in report.error
    assert elsewhere.requests == []
    # Graph's own links again: the sync resumes and completes
    tenant.entra.next_link_base = None
    assert tenant.sync(tenant.source()).error is None


def test_a_sharepoint_listing_of_drives_is_not_paged_from_another_host(tenant, elsewhere):
    t = build(tenant)
    for n in range(3):                                    # four drives: two pages of three
        tenant.sp.add_drive(t["site"], f"Library {n}")
    tenant.entra.next_link_base = elsewhere.origin
    with pytest.raises(SourceUnavailable, match="another host"):
        tenant.source().scopes()
    assert elsewhere.requests == []


def test_site_group_members_are_paged_on_the_sites_own_origin_only(tenant, elsewhere):
    build(tenant)
    whole = {g.token: g.members for g in tenant.source().groups()}
    tenant.sp.group_page_size = 1                         # one member a page: next links followed
    assert {g.token: g.members for g in tenant.source().groups()} == whole
    # the next page named on Graph's origin: the site's token is not for it
    tenant.sp.rest_next_link_base = "https://graph.microsoft.com"
    with pytest.raises(SourceUnavailable, match="another host"):
        tenant.source().groups()
    # nor on another host altogether
    tenant.sp.rest_next_link_base = elsewhere.origin
    with pytest.raises(SourceUnavailable, match="another host"):
        tenant.source().groups()
    assert elsewhere.requests == []
