"""The loopback Confluence Cloud driven with requests, as the connector will drive the real one."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urljoin

import pytest
import requests

from standins.fake_confluence import FakeConfluence

AUTH = ("svc@contoso.com", "t0ken")
T0 = datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc)          # 08:00 in Berlin (UTC+1 in November)


@pytest.fixture
def site():
    with FakeConfluence() as fake:
        fake.clock = lambda: T0
        yield fake


def get(site, path, *, auth=AUTH, **params) -> requests.Response:
    return requests.get(urljoin(site.origin, path), params=params, auth=auth, timeout=5, allow_redirects=False)


def search(site, cql: str) -> list[str]:
    answer = get(site, "/wiki/rest/api/search", cql=cql, limit=50)
    assert answer.status_code == 200, answer.text
    return [r["content"]["id"] for r in answer.json()["results"]]


def test_only_the_configured_token_gets_in_and_throttling_answers_429(site):
    assert get(site, "/wiki/api/v2/spaces", auth=None).status_code == 401
    wrong = get(site, "/wiki/api/v2/spaces", auth=("svc@contoso.com", "nope"))
    assert wrong.status_code == 401 and "Basic authentication" in wrong.text
    assert get(site, "/wiki/api/v2/spaces", auth=("SVC@contoso.com", "t0ken")).status_code == 200
    site.throttle(2, retry_after=3)
    first, second, third = (get(site, "/wiki/api/v2/spaces") for _ in range(3))
    assert first.status_code == second.status_code == 429 and first.headers["Retry-After"] == "3"
    assert third.status_code == 200


def test_spaces_are_filtered_by_keys_given_comma_separated_or_repeated(site):
    for key in ("ENG", "HR", "OPS"):
        site.add_space(key, f"{key} space")
    by_comma = get(site, "/wiki/api/v2/spaces", keys="ENG,HR").json()
    by_repeat = get(site, "/wiki/api/v2/spaces", keys=["ENG", "HR"]).json()
    assert [s["key"] for s in by_comma["results"]] == [s["key"] for s in by_repeat["results"]] == ["ENG", "HR"]
    eng = by_comma["results"][0]
    assert eng["type"] == "global" and eng["status"] == "current" and eng["_links"] == {"webui": "/spaces/ENG"}
    assert get(site, f"/wiki/api/v2/pages/{eng['homepageId']}").json()["title"] == "ENG space"
    assert by_comma["_links"] == {"base": f"{site.origin}/wiki"}
    assert len(get(site, "/wiki/api/v2/spaces").json()["results"]) == 3


def test_pages_page_by_cursor_until_next_is_gone(site):
    space = site.add_space("ENG", homepage=False)
    ids = [site.add_page("ENG", f"Page {n}", f"<p>{n}</p>") for n in range(5)]
    seen, url, calls = [], f"/wiki/api/v2/spaces/{space.id}/pages?limit=2&body-format=storage", 0
    while url:
        answer = requests.get(site.origin + url, auth=AUTH, timeout=5)
        body, calls = answer.json(), calls + 1
        seen += [(p["id"], p["body"]["storage"]["value"]) for p in body["results"]]
        url = body["_links"].get("next")
        if url:
            assert url.startswith(f"/wiki/api/v2/spaces/{space.id}/pages?") and "cursor=" in url
            assert answer.headers["Link"].startswith(f"<{url}>; rel=\"next\"")
    assert calls == 3 and seen == [(pid, f"<p>{n}</p>") for n, pid in enumerate(ids)]
    bare = get(site, f"/wiki/api/v2/spaces/{space.id}/pages").json()["results"][0]
    assert "body" not in bare and bare["version"]["number"] == 1 and bare["parentId"] is None
    assert site.requests_by_path["GET /wiki/api/v2/spaces/{id}/pages"] == 4


def test_ancestors_run_top_down_and_include_trashed_pages(site):
    space = site.add_space("ENG")
    top = site.add_page("ENG", "Top", "")
    middle = site.add_page("ENG", "Middle", "", parent=top)
    leaf = site.add_page("ENG", "Leaf", "", parent=middle)
    site.trash(middle)
    chain = get(site, f"/wiki/api/v2/pages/{leaf}/ancestors").json()["results"]
    assert chain == [{"id": space.homepage_id, "type": "page"}, {"id": top, "type": "page"},
                     {"id": middle, "type": "page"}]
    nearest = get(site, f"/wiki/api/v2/pages/{leaf}/ancestors", limit=1).json()["results"]
    assert nearest == [{"id": middle, "type": "page"}]


def test_restrictions_change_without_a_new_version(site):
    site.add_user("acc-sara", "sara@contoso.com", name="Sara Legal")
    site.add_user("acc-hid", "hidden@contoso.com", hidden=True)
    legal = site.add_group("legal")
    site.add_space("ENG")
    page = site.add_page("ENG", "Contract", "<p>terms</p>")
    before = get(site, f"/wiki/api/v2/pages/{page}").json()["version"]
    open_ = get(site, f"/wiki/rest/api/content/{page}/restriction/byOperation/read").json()
    assert open_["restrictions"]["user"]["results"] == [] and open_["restrictions"]["group"]["results"] == []

    site.advance(30)
    site.restrict(page, users=["acc-sara", "acc-hid"], groups=[legal])
    site.restrict(page, users=["acc-hid"], operation="update")
    read = get(site, f"/wiki/rest/api/content/{page}/restriction/byOperation/read",
               expand="restrictions.user,restrictions.group").json()
    assert read["operation"] == "read"
    users = read["restrictions"]["user"]["results"]
    assert [(u["accountId"], u["email"], u["type"]) for u in users] == [
        ("acc-sara", "sara@contoso.com", "known"), ("acc-hid", "", "known")]
    assert read["restrictions"]["group"]["results"][0] == {
        "type": "group", "name": "legal", "id": legal, "_links": read["restrictions"]["group"]["results"][0]["_links"]}
    update = get(site, f"/wiki/rest/api/content/{page}/restriction/byOperation/update").json()
    assert [u["accountId"] for u in update["restrictions"]["user"]["results"]] == ["acc-hid"]
    assert get(site, f"/wiki/api/v2/pages/{page}").json()["version"] == before
    assert search(site, 'lastmodified >= "2026/11/30 08:10"') == []


def test_cql_lastmodified_is_minute_precise_in_the_site_time_zone(site):
    site.add_space("ENG", homepage=False)
    page = site.add_page("ENG", "Runbook", "<p>v1</p>")
    blog = site.add_blogpost("ENG", "News", "<p>hi</p>")
    site.clock = lambda: datetime(2026, 11, 30, 8, 5, 30, tzinfo=timezone.utc)   # 09:05:30 in Berlin
    site.edit(page, "<p>v2</p>")
    assert search(site, 'space = "ENG" AND type = page AND lastmodified >= "2026/11/30 09:05"') == [page]
    assert search(site, 'space = "ENG" and type = page and lastmodified >= "2026/11/30 09:06"') == []
    assert search(site, 'space in ("ENG","HR") AND type in (page, blogpost) AND lastmodified > "2026/11/30 08:00"'
                        ' order by lastmodified') == [page]
    assert search(site, 'type in (page, blogpost) order by lastmodified desc') == [page, blog]
    result = get(site, "/wiki/rest/api/search", cql="type = page").json()["results"][0]
    assert result["lastModified"] == "2026-11-30T08:05:30.000Z" and result["entityType"] == "content"
    assert get(site, "/wiki/api/v2/pages/" + page).json()["version"]["number"] == 2
    bad = get(site, "/wiki/rest/api/search", cql="type = page OR space = ENG")
    assert bad.status_code == 400 and bad.json()["statusCode"] == 400
    assert get(site, "/wiki/rest/api/settings/systemInfo").json()["defaultTimeZone"] == "Europe/Berlin"


def test_trashed_pages_leave_search_but_are_listed_as_trashed(site):
    space = site.add_space("ENG", homepage=False)
    keep, gone = site.add_page("ENG", "Keep", ""), site.add_page("ENG", "Gone", "")
    site.trash(gone)
    assert search(site, "type = page") == [keep]
    listed = get(site, f"/wiki/api/v2/spaces/{space.id}/pages").json()["results"]
    trashed = get(site, f"/wiki/api/v2/spaces/{space.id}/pages", status="trashed").json()["results"]
    assert [p["id"] for p in listed] == [keep] and [(p["id"], p["status"]) for p in trashed] == [(gone, "trashed")]
    assert get(site, f"/wiki/api/v2/pages/{gone}").json()["status"] == "trashed"
    site.purge(gone)
    missing = get(site, f"/wiki/api/v2/pages/{gone}")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"


def test_space_permissions_and_anonymous_access(site):
    site.add_user("acc-ana", "ana@contoso.com", hidden=True)
    staff = site.add_group("all-staff")
    site.set_members(staff, ["acc-ana"])
    space = site.add_space("ENG", read=[("group", staff)], anonymous=True)
    v2 = get(site, f"/wiki/api/v2/spaces/{space.id}/permissions").json()["results"]
    assert {(p["principal"]["type"], p["principal"]["id"], p["operation"]["key"], p["operation"]["targetType"])
            for p in v2} == {("group", staff, "read", "space"), ("group", staff, "create", "page")}
    v1 = get(site, "/wiki/rest/api/space/ENG", expand="permissions").json()["permissions"]
    anonymous = [p for p in v1 if p["anonymousAccess"]]
    assert len(anonymous) == 1 and "subjects" not in anonymous[0]
    assert anonymous[0]["operation"] == {"operation": "read", "targetType": "space"}
    assert {p["subjects"]["group"]["results"][0]["name"] for p in v1 if not p["anonymousAccess"]} == {"all-staff"}
    members = get(site, f"/wiki/rest/api/group/{staff}/membersByGroupId").json()["results"]
    assert [(m["accountId"], m["email"]) for m in members] == [("acc-ana", "")]
    assert get(site, "/wiki/rest/api/user/email", accountId="acc-ana").status_code == 400


def test_groups_page_by_start_and_the_email_api_needs_its_permission():
    with FakeConfluence(email_api=True) as site:
        for name in ("ops", "dev", "legal"):
            site.add_group(name)
        site.add_user("acc-ana", "ana@contoso.com", hidden=True)
        first = get(site, "/wiki/rest/api/group", limit=2).json()
        assert [g["name"] for g in first["results"]] == ["dev", "legal"] and first["size"] == 2
        assert first["_links"]["next"].startswith("/rest/api/group?")            # relative to /wiki
        rest = requests.get(first["_links"]["base"] + first["_links"]["next"], auth=AUTH, timeout=5).json()
        assert [g["name"] for g in rest["results"]] == ["ops"] and "next" not in rest["_links"]
        bulk = get(site, "/wiki/rest/api/user/bulk", accountId=["acc-ana", "nobody"]).json()["results"]
        assert [(u["accountId"], u["email"]) for u in bulk] == [("acc-ana", "")]
        assert get(site, "/wiki/rest/api/user/email", accountId="acc-ana").json() == {
            "accountId": "acc-ana", "email": "ana@contoso.com"}


def test_attachment_download_redirects_to_a_media_url_without_authorization(site):
    site.add_space("ENG")
    page = site.add_page("ENG", "Specs", "")
    site.add_attachment(page, "spec sheet.pdf", b"%PDF-1.7 bytes", "application/pdf")
    att = get(site, f"/wiki/api/v2/pages/{page}/attachments").json()["results"][0]
    assert att["id"].startswith("att") and att["fileSize"] == 14 and att["pageId"] == page
    redirect = get(site, "/wiki" + att["downloadLink"])
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert "/media/file/" in location and "token=" in location
    assert requests.get(location, auth=AUTH, timeout=5).status_code == 400 and site.token_leaks == 1
    fetched = requests.get(location, timeout=5)
    assert fetched.status_code == 200 and fetched.content == b"%PDF-1.7 bytes" and site.downloads == 1
    site.advance(10)
    assert requests.get(location, timeout=5).status_code == 401
