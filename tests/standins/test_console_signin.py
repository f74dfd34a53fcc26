"""Signing in to the operator console with Entra (connectors/identity/oidc.py): the real msal runs the
authorisation-code flow with PKCE against the loopback Entra over TLS (msal takes https authorities
only); the browser's part (following the redirects) is done with requests here, and by Chromium in
tests/browser/."""

from __future__ import annotations

import ssl
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import trustme

from chatops.errors import GroupsUnavailable, SignInFailed
from connectors.identity.oidc import EntraSignIn
from connectors.microsoft.graph import GraphClient
from standins.fake_entra import FakeEntra

ADMINS = "0f3c9a2e-5b1d-4e7a-9c2f-1a2b3c4d5e6f"
OTHERS = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
USERS = {
    "ana@contoso.com": {"id": "oid-ana", "displayName": "Ana", "groups": [{"id": ADMINS.upper()}]},
    "ben@contoso.com": {"id": "oid-ben", "displayName": "Ben", "groups": [{"id": OTHERS}]},
    "olga@contoso.com": {"id": "oid-olga", "displayName": "Olga", "overage": True,
                         "groups": [{"id": OTHERS}, {"id": ADMINS}]},
}
REDIRECT = "http://127.0.0.1:3000/admin/auth/callback"


@pytest.fixture(scope="module")
def tenant(tmp_path_factory):
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    entra = FakeEntra(users=USERS, page_size=1, direct=True)
    entra.tls = context
    with entra, pytest.MonkeyPatch.context() as env:
        env.setenv("REQUESTS_CA_BUNDLE", str(bundle))     # requests prefers it to Session.verify
        yield entra, requests.Session()


def sign_in(tenant) -> EntraSignIn:
    entra, http = tenant
    graph = GraphClient(entra.tenant_id, entra.client_id, entra.client_secret, authority_host=f"{entra.origin}/login",
                        graph_url=f"{entra.origin}/graph/v1.0", http_client=http, instance_discovery=False,
                        sleep=lambda s: None)
    return EntraSignIn(entra.tenant_id, entra.client_id, entra.client_secret, graph=graph,
                       authority_host=f"{entra.origin}/login", instance_discovery=False, http=http)


def browse(tenant, flow: dict, who: str) -> dict[str, str]:
    """What the browser does: the authorize URL, an account picked, the redirect back."""
    _, http = tenant
    resp = http.get(flow["auth_uri"] + "&" + "login_as=" + who, allow_redirects=False)
    assert resp.status_code == 302, resp.text
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query))


def test_an_admin_signs_in_with_groups_from_the_token(tenant):
    s = sign_in(tenant)
    flow = s.start(REDIRECT)
    query = browse(tenant, flow, "ana@contoso.com")
    who = s.finish(flow, query)
    assert (who.oid, who.username, who.name, who.tenant) == ("oid-ana", "ana@contoso.com", "Ana", "tenant-1")
    assert who.groups == {ADMINS} and who.groups_from == "token"          # lower-cased object ids


def test_the_account_picker_lists_the_directory(tenant):
    entra, http = tenant
    flow = sign_in(tenant).start(REDIRECT)
    page = http.get(flow["auth_uri"]).text
    assert "ana@contoso.com" in page and "olga@contoso.com" in page


def test_a_group_overage_is_resolved_through_graph(tenant):
    entra, _ = tenant
    s = sign_in(tenant)
    flow = s.start(REDIRECT)
    who = s.finish(flow, browse(tenant, flow, "olga@contoso.com"))
    assert who.groups == {ADMINS, OTHERS} and who.groups_from == "graph"
    assert any("/users/oid-olga/transitiveMemberOf" in p for p in entra.paths)


def test_groups_that_cannot_be_read_are_no_groups(tenant):
    entra, _ = tenant
    s = sign_in(tenant)
    flow = s.start(REDIRECT)
    query = browse(tenant, flow, "olga@contoso.com")
    entra.throttle_next(1, status=403, match="transitiveMemberOf")
    with pytest.raises(GroupsUnavailable):
        s.finish(flow, query)


def test_a_code_works_once(tenant):
    s = sign_in(tenant)
    flow = s.start(REDIRECT)
    query = browse(tenant, flow, "ben@contoso.com")
    assert s.finish(dict(flow), query).groups == {OTHERS}
    with pytest.raises(SignInFailed, match="invalid_grant"):
        s.finish(dict(flow), query)


@pytest.mark.parametrize("tamper", ["state", "code_verifier", "nonce"])
def test_a_forged_or_mixed_up_callback_is_refused(tenant, tamper):
    s = sign_in(tenant)
    flow = s.start(REDIRECT)
    query = browse(tenant, flow, "ana@contoso.com")
    if tamper == "state":
        query["state"] = "someone-elses"
    else:
        flow[tamper] = "x" * 43            # another flow's PKCE verifier or nonce
    with pytest.raises(SignInFailed):
        s.finish(flow, query)


def test_an_error_from_entra_is_a_failed_sign_in(tenant):
    flow = sign_in(tenant).start(REDIRECT)
    with pytest.raises(SignInFailed, match="access_denied"):
        sign_in(tenant).finish(flow, {"error": "access_denied", "error_description": "the user said no",
                                      "state": flow["state"]})


def test_id_tokens_for_another_app_or_tenant_or_expired_are_refused(tenant):
    s = sign_in(tenant)
    good = {"aud": "client-1", "tid": "tenant-1", "oid": "o", "iss": f"{tenant[0].origin}/login/tenant-1/v2.0",
            "exp": 2_000_000_000}
    s._check(good, now=1_900_000_000)
    for bad in ({"aud": "other-app"}, {"iss": "https://evil.example/tenant-1/v2.0"}, {"exp": 1_800_000_000},
                {"tid": None}):
        with pytest.raises(SignInFailed):
            s._check({**good, **bad}, now=1_900_000_000)
