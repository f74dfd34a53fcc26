"""The organization's directory (Atlassian's admin API, ``GET /admin/v1/orgs/{orgId}/users``): the
emails of the accounts the organization manages, whatever their profile visibility says. It is
where an account whose email Confluence or Jira hides is mapped — with an organization API key
(``read:accounts:admin``), named by ``admin_key_env``. Accounts it does not list stay unmapped."""

from __future__ import annotations

from urllib.parse import quote

from connectors.atlassian.http import AtlassianHttp

ADMIN_API = "https://api.atlassian.com"


class OrgDirectory:
    def __init__(self, http: AtlassianHttp, org_id: str):
        self.http = http
        self.org_id = org_id
        self._emails: dict[str, str] | None = None

    def reset(self) -> None:
        """Read the directory again at the next lookup (a permission pass begins)."""
        self._emails = None

    def emails(self) -> dict[str, str]:
        """{account id: email} of every managed account with an email, read once per pass."""
        if self._emails is None:
            emails: dict[str, str] = {}
            link: str | None = f"/admin/v1/orgs/{quote(self.org_id)}/users"
            while link:
                body = self.http.get_json(link)
                for user in body.get("data") or []:
                    if user.get("account_id") and user.get("email"):
                        emails[str(user["account_id"])] = str(user["email"]).strip().lower()
                link = (body.get("links") or {}).get("next")
            self._emails = emails
        return self._emails
