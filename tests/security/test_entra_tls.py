"""Entra and Graph on hosts msal does not know, over TLS trusted through REQUESTS_CA_BUNDLE.

Requirement: ``ENTRA_AUTHORITY_HOST`` and ``GRAPH_URL`` may name hosts msal does not know
(a sovereign cloud, a corporate proxy, a test double). With ``ENTRA_INSTANCE_DISCOVERY=false``
msal must not call Microsoft's public instance discovery, and TLS trust follows the standard
``REQUESTS_CA_BUNDLE``.

The real msal and requests, built by ``Container(settings).identity`` exactly as in production,
talk to a TLS stand-in on 127.0.0.1 whose certificate comes from a throwaway trustme CA. The
authority is ``https://localhost:<port>`` and Graph ``https://127.0.0.1:<port>/v1.0``: two
names msal has never heard of, both on the certificate. The container is given a plain
``requests.Session`` whose transport adapter (requests' own extension point) records every URL
and refuses any host other than the loopback ones at once, so nothing can leave the machine
and the "instance discovery on" case fails fast and deterministically.
"""

from __future__ import annotations

import itertools
import ssl
import time
import uuid
from urllib.parse import unquote, urlsplit

import certifi
import pytest
import redis
import requests
import trustme

from chatops.errors import IdentityUnavailable
from chatops_app.container import Container
from chatops.settings import Settings
from chatops_app.settings import load_settings
from connectors.microsoft.settings import EntraSettings
from tests.settings_env import settings_env_names
from standins._loopback import LoopbackServer, Reply, Request

pytestmark = pytest.mark.redis

try:
    redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping()
except redis.RedisError as exc:
    pytest.skip(f"needs a Redis server on 127.0.0.1:6379 ({type(exc).__name__})", allow_module_level=True)

REDIS_URL = "redis://127.0.0.1:6379/0"
TENANT = "5f0c2a4e-3c1d-4b8e-9a51-0d2f6c7b8e91"
CLIENT_ID = "0b6f3d9e-8a7c-4e21-b5d4-1c2e3f4a5b6c"
CLIENT_SECRET = "tls-test-secret"
EMAIL = "ana@corp.example"
USER_ID = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"
GROUPS = ["1e7c0a52-6b3d-4f8e-9c21-3a4b5c6d7e8f", "b2d4f6a8-1c3e-4a5b-8d7f-9e0a1b2c3d4e"]
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


class TlsEntra(LoopbackServer):
    """An Entra authority (on ``localhost``) and Graph (on ``127.0.0.1``), HTTPS only.

    Serves OIDC discovery, the client-credentials token endpoint, ``/v1.0/users/{email}`` and
    ``/v1.0/users/{id}/transitiveMemberOf/microsoft.graph.group`` (one group per page, with an
    absolute https ``@odata.nextLink``), and also ``/common/discovery/instance`` should anyone
    ask. Records every request as ``(method, host, path)`` plus the TLS handshakes.
    """

    def __init__(self, ca: trustme.CA):
        super().__init__()
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(self._tls)
        self.requests: list[tuple[str, str, str]] = []  # (method, Host header, decoded path)
        self.queries: list[dict[str, str]] = []
        self.token_forms: list[dict[str, str]] = []
        self.handshakes: list[str] = []  # negotiated TLS version of every accepted connection
        self.handshake_failures: list[str] = []  # why a client broke off the handshake
        self._tokens: set[str] = set()
        self._numbers = itertools.count(1)

    @property
    def login_host(self) -> str:
        return f"localhost:{self.port}"

    @property
    def graph_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def authority_host(self) -> str:
        return f"https://{self.login_host}"

    @property
    def graph_url(self) -> str:
        return f"https://{self.graph_host}/v1.0"

    def start(self):
        super().start()
        # Nobody knows the port yet, so no connection can slip in before TLS is switched on.
        httpd = self._httpd
        accept, serve = httpd.get_request, httpd.finish_request

        def get_request():
            conn, addr = accept()  # the handshake happens in the connection's own thread
            return self._tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

        def finish_request(conn, addr):
            conn.settimeout(5)
            try:
                conn.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                with self.lock:
                    self.handshake_failures.append(f"{type(exc).__name__}: {exc}")
                return
            with self.lock:
                self.handshakes.append(conn.version())
            serve(conn, addr)

        httpd.get_request = get_request
        httpd.finish_request = finish_request
        return self

    # -- HTTP ---------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        host = request.headers.get("host", "")
        path = unquote(request.path)
        with self.lock:
            self.requests.append((request.method, host, path))
            self.queries.append(dict(request.query))
        if host == self.login_host:
            return self._login(request, path)
        if host == self.graph_host:
            return self._graph(request, path)
        return Reply(421, {"error": "misdirected_request"})

    def _login(self, request: Request, path: str) -> Reply:
        tenant = f"{self.authority_host}/{TENANT}"
        if path == "/common/discovery/instance":
            return Reply(200, {"tenant_discovery_endpoint": f"{tenant}/v2.0/.well-known/openid-configuration",
                               "api-version": "1.1", "metadata": []})
        if path == f"/{TENANT}/v2.0/.well-known/openid-configuration" and request.method == "GET":
            return Reply(200, {
                "issuer": f"{tenant}/v2.0",
                "authorization_endpoint": f"{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{tenant}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{tenant}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{tenant}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            })
        if path == f"/{TENANT}/oauth2/v2.0/token" and request.method == "POST":
            form = request.form()
            with self.lock:
                self.token_forms.append(form)
            if form.get("grant_type") != "client_credentials":
                return Reply(400, {"error": "unsupported_grant_type"})
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return Reply(401, {"error": "invalid_client"})
            token = f"tls-token-{next(self._numbers)}"
            with self.lock:
                self._tokens.add(token)
            return Reply(200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                               "access_token": token})
        return Reply(400, {"error": "invalid_request", "error_description": f"stand-in: no {path}"})

    def _graph(self, request: Request, path: str) -> Reply:
        auth = request.headers.get("authorization", "")
        with self.lock:
            known = auth.startswith("Bearer ") and auth[len("Bearer "):] in self._tokens
        if not known:
            return Reply(401, {"error": {"code": "InvalidAuthenticationToken", "message": "no token"}})
        if path.lower() in (f"/v1.0/users/{EMAIL}", f"/v1.0/users/{USER_ID}"):
            return Reply(200, {"id": USER_ID, "displayName": "Ana Ops", "mail": EMAIL,
                               "userPrincipalName": EMAIL})
        if path == f"/v1.0/users/{USER_ID}/transitiveMemberOf/microsoft.graph.group":
            page = int(request.query.get("$skiptoken", "0"))
            body = {"@odata.context": f"{self.graph_url}/$metadata#directoryObjects",
                    "value": [{"@odata.type": "#microsoft.graph.group", "id": GROUPS[page]}]}
            if page + 1 < len(GROUPS):  # absolute, as Graph writes it
                body["@odata.nextLink"] = (f"{self.graph_url}/users/{USER_ID}/transitiveMemberOf/"
                                           f"microsoft.graph.group?$select=id&$top=999&$skiptoken={page + 1}")
            return Reply(200, body)
        return Reply(404, {"error": {"code": "Request_ResourceNotFound", "message": path}})


# -- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_bundle(ca, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tls") / "stand-in-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def entra(ca):
    with TlsEntra(ca) as server:
        yield server


class Network(requests.adapters.HTTPAdapter):
    """A transport adapter that records every URL sent and refuses every non-loopback host."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.refused_names: list[str] = []

    def send(self, request, **kwargs):
        host = urlsplit(request.url).hostname or ""
        if host not in LOOPBACK_NAMES:
            self.refused_names.append(host)
            raise requests.ConnectionError(f"test fence: {host} is not loopback")
        self.urls.append(request.url)
        return super().send(request, **kwargs)

    def session(self) -> requests.Session:
        s = requests.Session()
        s.mount("https://", self)
        s.mount("http://", self)
        return s


@pytest.fixture
def network() -> Network:
    return Network()


@pytest.fixture
def env(monkeypatch, ca_bundle):
    """A clean environment: no chatops settings, no proxies; TLS trust = the stand-in's CA."""
    for name in settings_env_names() | {"CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                         "http_proxy", "https_proxy", "all_proxy"}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
    return monkeypatch


@pytest.fixture
def prefix():
    prefix = f"chatops-entra-tls-{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield prefix
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


def cached_keys(prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return list(client.scan_iter(f"{prefix}:*"))
    finally:
        client.close()


def settings_for(entra: TlsEntra, prefix: str, **extra) -> Settings:
    return load_settings(
        ENTRA_TENANT_ID=TENANT, ENTRA_CLIENT_ID=CLIENT_ID, ENTRA_CLIENT_SECRET=CLIENT_SECRET,
        ENTRA_AUTHORITY_HOST=entra.authority_host, GRAPH_URL=entra.graph_url,
        CHATOPS_IDENTITY_PROVIDER="entra", REDIS_URL=REDIS_URL, CHATOPS_KEY_PREFIX=prefix, **extra,
    )


def lookup(settings: Settings, network: Network):
    container = Container(settings, http_client=network.session())
    try:
        return container.identity.by_email(EMAIL)
    finally:
        container.close()


def wait_for(condition, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- tests --------------------------------------------------------------------------


def test_unknown_hosts_work_over_tls_without_instance_discovery(entra, network, env, prefix):
    settings = settings_for(entra, prefix, ENTRA_INSTANCE_DISCOVERY="false")
    assert settings.of(EntraSettings).entra_instance_discovery is False

    principal = lookup(settings, network)

    assert principal.email == EMAIL
    assert principal.groups == frozenset(GROUPS)  # both pages, object ids only
    assert principal.display_name == "Ana Ops"

    # msal asked the configured authority (OIDC discovery, then the token), Graph went to GRAPH_URL,
    # and the second group page was fetched through the absolute https nextLink.
    login, graph = entra.login_host, entra.graph_host
    member_of = f"/v1.0/users/{USER_ID}/transitiveMemberOf/microsoft.graph.group"
    assert entra.requests == [
        ("GET", login, f"/{TENANT}/v2.0/.well-known/openid-configuration"),
        ("POST", login, f"/{TENANT}/oauth2/v2.0/token"),
        ("GET", graph, f"/v1.0/users/{EMAIL}"),
        ("GET", graph, member_of),
        ("GET", graph, member_of),
    ]
    assert "$skiptoken" not in entra.queries[3] and entra.queries[4]["$skiptoken"] == "1"
    assert not any(path.endswith("/discovery/instance") for _, _, path in entra.requests)
    [form] = entra.token_forms
    assert form["grant_type"] == "client_credentials" and form["client_id"] == CLIENT_ID

    # Every connection was TLS, trusted through REQUESTS_CA_BUNDLE alone (nothing disabled verification).
    assert entra.handshakes and all(v and v.startswith("TLS") for v in entra.handshakes)
    assert entra.handshake_failures == []
    # Nothing was even looked up, let alone sent, outside the two configured origins.
    assert network.refused_names == []
    assert network.urls and all(
        url.startswith((entra.authority_host + "/", entra.graph_url + "/")) for url in network.urls), network.urls
    assert not any("microsoftonline" in url or "microsoft.com" in urlsplit(url).netloc for url in network.urls)

    assert cached_keys(prefix)  # the verified answer was cached


@pytest.mark.parametrize("trust", ["no bundle", "bundle without the stand-in CA"])
def test_untrusted_certificate_fails_closed(entra, network, env, prefix, trust):
    if trust == "no bundle":
        env.delenv("REQUESTS_CA_BUNDLE")
    else:
        env.setenv("REQUESTS_CA_BUNDLE", certifi.where())

    with pytest.raises(IdentityUnavailable):
        lookup(settings_for(entra, prefix, ENTRA_INSTANCE_DISCOVERY="false"), network)

    # The client did reach the stand-in and broke off the handshake: the certificate was refused,
    # so no OIDC document, no client secret and no Graph call went over the connection.
    assert wait_for(lambda: entra.handshake_failures), "the client never reached the stand-in"
    assert entra.handshakes == []
    assert entra.requests == [] and entra.token_forms == []
    assert network.refused_names == []
    assert network.urls == [f"{entra.authority_host}/{TENANT}/v2.0/.well-known/openid-configuration"]
    assert cached_keys(prefix) == []  # a failure is never cached


def test_instance_discovery_left_on_asks_microsoft_and_fails_closed(entra, network, env, prefix):
    settings = settings_for(entra, prefix)  # ENTRA_INSTANCE_DISCOVERY not set: the default
    assert settings.of(EntraSettings).entra_instance_discovery is True

    with pytest.raises(IdentityUnavailable):
        lookup(settings, network)

    # msal went to Microsoft's public instance discovery about our authority (refused here: no
    # network), before ever asking the stand-in: the flag is what makes the first test work.
    assert set(network.refused_names) == {"login.microsoftonline.com"}
    assert network.urls == []
    assert entra.requests == [] and entra.token_forms == [] and entra.handshakes == []
    assert cached_keys(prefix) == []


def test_fence_lets_loopback_through_only(network):
    """The fence the other tests rely on: anything but loopback is refused and recorded."""
    with pytest.raises(requests.ConnectionError):
        network.session().get("https://login.microsoftonline.com/common/discovery/instance", timeout=1)
    assert network.refused_names == ["login.microsoftonline.com"] and network.urls == []
