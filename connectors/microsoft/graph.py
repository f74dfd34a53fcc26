"""A small Microsoft Graph client with an app-only token (msal client credentials).

Shared by the identity provider (``EntraProvider``), the console's sign-in, the SharePoint
source, the ``entra_group`` action connector and ``chatops doctor``, so the token and retry logic
exist once (the configured app's client: ``credentials.graph_client``):

* the msal app is built on first use (msal fetches the tenant's discovery
  document when it is built, so an unreachable Entra is a failed call, not a
  failed start) and keeps the token in its cache;
* ``instance_discovery=False`` is for an authority host msal does not know (a
  sovereign cloud, a corporate proxy, a test double): msal then never asks
  Microsoft's public instance discovery endpoint. TLS trust is that of the
  ``requests`` session, which honours ``REQUESTS_CA_BUNDLE``;
* 429 and 5xx are retried a bounded number of times, honouring Retry-After
  (capped), network errors too; anything else raises ``GraphError``;
* the app's token goes to one origin only (scheme, host and port): Graph's (``graph_url``), or
  for a token of another resource (``scope``: a SharePoint site's REST API) that resource's.
  An absolute URL Graph hands back (``@odata.nextLink``, ``odata.nextLink``) on any other
  origin is not followed: ``ForeignHost``, and a log line.

Error messages never contain the client secret or a token.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable
from urllib.parse import quote, urlsplit

import msal
import requests

from connectors.http.pacing import retry_after

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def scope_for(graph_url: str) -> str:
    """The app-only scope of the Graph at ``graph_url`` (a sovereign cloud's Graph has its own)."""
    parts = urlsplit(graph_url)
    return f"{parts.scheme}://{parts.netloc}/.default" if parts.scheme and parts.netloc else GRAPH_SCOPE


class WithTimeout:
    """The session msal talks through, with a timeout on every call: msal sets none on a client it
    is given, and an authority that accepts and never answers would hold a lookup forever."""

    def __init__(self, session: requests.Session, timeout: float):
        self._session = session
        self._timeout = timeout

    def get(self, url, **kwargs):
        kwargs.setdefault("timeout", self._timeout)
        return self._session.get(url, **kwargs)

    def post(self, url, **kwargs):
        kwargs.setdefault("timeout", self._timeout)
        return self._session.post(url, **kwargs)

    def close(self) -> None:  # the session is ours; msal does not close it
        pass


class GraphError(Exception):
    """Graph (or the token endpoint) could not be asked or refused.

    ``status`` is the HTTP status if Graph answered; ``code``/``graph_message`` are
    Graph's (or msal's) error code and message; ``transient`` says whether trying
    again later may help (network trouble, throttling, 5xx).
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 graph_message: str | None = None, transient: bool = False):
        super().__init__(message)
        self.status = status
        self.code = code
        self.graph_message = graph_message
        self.transient = transient


class GraphNotFound(GraphError):
    """Graph answered 404."""


class ForeignHost(GraphError):
    """An absolute URL (a next link) on an origin the app's token is not for: not followed."""


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL, the port made explicit; None for anything
    else, and for a URL with user info (``https://graph.microsoft.com@evil.example/``)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def _shown(origin: tuple[str, str, int] | None) -> str:
    return f"{origin[0]}://{origin[1]}:{origin[2]}" if origin else "an unusable URL"


class GraphClient:
    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str | dict | None,
        *,
        authority_host: str = "https://login.microsoftonline.com",
        graph_url: str = "https://graph.microsoft.com/v1.0",
        http_client: requests.Session | None = None,
        scope: str | None = None,
        instance_discovery: bool = True,
        max_attempts: int = 4,
        max_retry_after: float = 10.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._http = http_client or requests.Session()
        # A client secret, or a certificate as msal takes it ({"private_key", "public_certificate"}
        # or {"private_key_pfx_path", "passphrase"}): SharePoint's own REST API takes app-only
        # tokens from a certificate only.
        self._msal_args = dict(client_id=client_id, client_credential=client_secret,
                               authority=f"{authority_host.rstrip('/')}/{tenant_id}")
        self.has_certificate = isinstance(client_secret, dict)
        if not instance_discovery:
            self._msal_args["instance_discovery"] = False
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_lock = threading.Lock()
        self._base = graph_url.rstrip("/")
        self._origin = origin_of(self._base)
        self._scope = scope or scope_for(graph_url)
        self._max_attempts = max(1, max_attempts)
        self._max_retry_after = max_retry_after
        self._timeout = timeout
        self._sleep = sleep

    def __repr__(self) -> str:  # never the secret
        return f"GraphClient({self._base!r}, authority={self._msal_args['authority']!r})"

    @property
    def base_url(self) -> str:
        return self._base

    def url(self, path_or_url: str, *, origin: tuple[str, str, int] | None = None) -> str:
        """A path relative to ``graph_url``; an absolute URL (``@odata.nextLink``) as is, if it
        is on Graph's origin (or ``origin``: another resource's, whose token it will carry).
        Raises ``ForeignHost`` for one elsewhere."""
        if not path_or_url.startswith(("https://", "http://")):
            return f"{self._base}/{path_or_url.lstrip('/')}"
        allowed = origin or self._origin
        found = origin_of(path_or_url)
        if allowed is None or found != allowed:
            log.warning("not following a link to another host with the app's token",
                        extra={"host": _shown(found), "allowed": _shown(allowed)})
            raise ForeignHost(f"Microsoft Graph pointed to another host ({_shown(found)}); not followed, the "
                              f"app's token goes to {_shown(allowed)} only: check GRAPH_URL and any proxy that "
                              f"rewrites Graph's answers")
        return path_or_url

    # -- requests ---------------------------------------------------------

    def get(self, path_or_url: str) -> dict:
        """GET, JSON out. Raises ``GraphNotFound`` on 404, ``GraphError`` otherwise."""
        return self._request("GET", self.url(path_or_url)) or {}

    def get_all(self, path_or_url: str) -> list[dict]:
        """Every ``value`` item, following ``@odata.nextLink``."""
        items: list[dict] = []
        url: str | None = self.url(path_or_url)
        while url:
            page = self.get(url)
            items.extend(page.get("value", []))
            url = page.get("@odata.nextLink")
        return items

    def post(self, path_or_url: str, body: Any, *, retry: bool = True) -> dict | None:
        """POST JSON; the JSON answer, or None for an empty one (204).

        Retried like GET: pass ``retry=False`` unless repeating the request is harmless.
        """
        return self._request("POST", self.url(path_or_url), json_body=body,
                             attempts=self._max_attempts if retry else 1)

    def find_user(self, email: str, select: str = "id,displayName,mail,userPrincipalName") -> dict | None:
        """The user whose UPN or mail is ``email``; None if there is none."""
        try:
            return self.get(f"/users/{quote(email, safe='@')}?$select={select}")
        except GraphNotFound:
            pass
        # Guests and people whose UPN differs from their mail: look up by mail.
        escaped = email.replace("'", "''")
        try:
            page = self.get(f"/users?$filter=mail eq '{quote(escaped, safe='')}'&$select={select}")
        except GraphNotFound:
            raise GraphError("Graph answered 404 to a user search", status=404) from None
        found = page.get("value") or []
        return found[0] if found else None

    # -- internals --------------------------------------------------------

    def _msal(self) -> msal.ConfidentialClientApplication:
        with self._app_lock:
            if self._app is None:
                try:
                    self._app = msal.ConfidentialClientApplication(
                        **self._msal_args, http_client=WithTimeout(self._http, self._timeout))
                except (requests.RequestException, ValueError) as exc:
                    raise GraphError(f"Entra authority unusable: {type(exc).__name__}",
                                     transient=isinstance(exc, requests.RequestException)) from None
            return self._app

    @property
    def http(self) -> requests.Session:
        return self._http

    def token(self, scope: str | None = None) -> str:
        """An access token for Graph, or for ``scope`` (another resource's ``.default``), from
        msal's cache while it is valid."""
        app = self._msal()
        try:
            result = app.acquire_token_for_client(scopes=[scope or self._scope])
        except (requests.RequestException, ValueError) as exc:
            raise GraphError(f"Entra token request failed: {type(exc).__name__}",
                             transient=isinstance(exc, requests.RequestException)) from None
        if not result or "access_token" not in result:
            code = (result or {}).get("error", "unknown_error")
            raise GraphError(f"Entra refused the token request ({code})", code=code,
                             transient=code in ("temporarily_unavailable", "server_error"))
        return result["access_token"]

    def send(self, method: str, url: str, *, json_body: Any = None, headers: dict | None = None,
             scope: str | None = None, allow_redirects: bool | None = None,
             timeout: float | None = None, stream: bool = False) -> requests.Response:
        """One request with the app's token, no retries: callers with their own retry policy (a
        source's throttling for the whole source) build on it. Raises ``requests`` errors, and
        ``ForeignHost`` for an absolute URL off the origin of the token's resource."""
        target = self.url(url, origin=origin_of(scope) if scope else None)
        sent = {"Authorization": f"Bearer {self.token(scope)}", "Accept": "application/json", **(headers or {})}
        return self._http.request(method, target, headers=sent, json=json_body,
                                  timeout=timeout or self._timeout, stream=stream,
                                  allow_redirects=method == "GET" if allow_redirects is None else allow_redirects)

    def _request(self, method: str, url: str, *, json_body: Any = None, attempts: int | None = None):
        attempts = attempts or self._max_attempts
        for attempt in range(1, attempts + 1):
            try:
                resp = self.send(method, url, json_body=json_body)
            except requests.RequestException as exc:
                if attempt == attempts:
                    raise GraphError(f"Graph unreachable: {type(exc).__name__}", transient=True) from None
                self._sleep(min(2 ** attempt * 0.25, self._max_retry_after))
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                if attempt == attempts:
                    code, message = graph_error(resp)
                    raise GraphError(f"Graph answered {resp.status_code} after {attempt} attempts",
                                     status=resp.status_code, code=code, graph_message=message,
                                     transient=True)
                delay = retry_after(resp, default=2 ** attempt * 0.25)
                log.warning("graph throttled or failing, retrying",
                            extra={"status": resp.status_code, "delay_s": delay})
                self._sleep(min(delay, self._max_retry_after))
                continue
            if resp.status_code == 404:
                code, message = graph_error(resp)
                raise GraphNotFound("Graph answered 404", status=404, code=code, graph_message=message)
            if resp.status_code >= 300:
                code, message = graph_error(resp)
                raise GraphError(f"Graph answered {resp.status_code}", status=resp.status_code,
                                 code=code, graph_message=message)
            if resp.status_code == 204 or not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                raise GraphError("Graph answered with something that is not JSON",
                                 status=resp.status_code) from None
        raise GraphError("Graph retries exhausted", transient=True)  # pragma: no cover - loop always returns


def graph_error(resp: requests.Response) -> tuple[str | None, str | None]:
    """Graph's ``{"error": {"code", "message"}}``, if the body is that."""
    try:
        err = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(err, dict):
        return None, None
    code, message = err.get("code"), err.get("message")
    return (str(code) if code else None), (str(message)[:300] if message else None)
