"""The loopback Jira Cloud's read side, driven with requests as a source connector will drive the real one."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests

from standins.fake_jira import FakeJira

EMAIL, TOKEN = "svc-jira@example.com", "ATATT3x-read-token"
AUTH = (EMAIL, TOKEN)
T0 = datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc)          # 08:00 in Berlin (UTC+1 in November)
API = "/rest/api/3"


@pytest.fixture
def jira():
    with FakeJira(email=EMAIL, token=TOKEN) as fake:
        fake.clock = lambda: T0
        yield fake


def get(jira, path, *, auth=AUTH, **params) -> requests.Response:
    return requests.get(jira.origin + API + path, params=params, auth=auth, timeout=5)


def ok(jira, path, **params) -> dict:
    answer = get(jira, path, **params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def keys(jira, jql: str, **params) -> list[str]:
    return [i["key"] for i in ok(jira, "/search/jql", jql=jql, fields="summary", **params)["issues"]]


def people(jira):
    jira.add_user("acc-ana", "ana@example.com", name="Ana Ops")
    jira.add_user("acc-ben", "ben@example.com", name="Ben Hidden", hidden=True)
    jira.add_user("acc-cy", "cy@example.com", name="Cy Gone", active=False)
    sre = jira.add_group("sre")
    jira.set_members(sre, ["acc-ana", "acc-ben", "acc-cy"])
    return sre


def test_only_the_token_gets_in_and_throttling_answers_429_with_jira_headers(jira):
    assert get(jira, "/myself", auth=None).status_code == 401
    wrong = get(jira, "/myself", auth=(EMAIL, "nope"))
    assert wrong.status_code == 401 and wrong.text == "Client must be authenticated to access this resource."
    me = ok(jira, "/myself")
    assert me["emailAddress"] == EMAIL and me["timeZone"] == "Europe/Berlin" and me["accountId"] == jira.account_id
    jira.throttle(2, retry_after=3)
    first, second, third = (get(jira, "/myself") for _ in range(3))
    assert first.status_code == second.status_code == 429 and third.status_code == 200
    assert first.headers["Retry-After"] == "3" and first.headers["RateLimit-Reason"] == "jira-burst-based"
    assert first.headers["X-RateLimit-Reset"] == "2026-11-30T07:00Z" and first.headers["X-RateLimit-Remaining"] == "0"
    assert jira.requests_by_path["GET /rest/api/3/myself"] == 6


def test_projects_are_filtered_by_repeated_keys_paged_and_expanded(jira):
    people(jira)
    for key in ("OPS", "INC", "HR"):
        jira.add_project(key, f"{key} project", lead="acc-ana")
    first = ok(jira, "/project/search", keys=["OPS", "INC"], maxResults=1, expand="lead")
    assert (first["total"], first["isLast"], first["startAt"]) == (2, False, 0)
    assert first["values"][0]["key"] == "INC" and first["values"][0]["lead"]["accountId"] == "acc-ana"
    second = requests.get(first["nextPage"], auth=AUTH, timeout=5).json()
    assert [p["key"] for p in second["values"]] == ["OPS"] and second["isLast"] and "nextPage" not in second
    plain = ok(jira, "/project/search")["values"]
    assert [p["key"] for p in plain] == ["HR", "INC", "OPS"] and "lead" not in plain[0]
    assert set(plain[0]) >= {"id", "key", "name", "self", "projectTypeKey"}


def test_a_project_key_that_does_not_exist_is_left_out_of_the_search_and_a_404_alone():
    with FakeJira(email=EMAIL, token=TOKEN, enforce_permissions=True) as jira:
        people(jira)
        ops = jira.add_project("OPS", browse=[("applicationRole", "jira-software")])
        jira.add_project("HR", browse=[("user", "acc-ana")])            # the account may not browse it
        found = ok(jira, "/project/search", keys=["OPS", "NOPE", "HR"])
        assert [p["key"] for p in found["values"]] == ["OPS"] and (found["total"], found["isLast"]) == (1, True)
        assert ok(jira, "/project/search", keys="OPS,NOPE")["values"] == []     # keys repeat; no comma lists
        for ref, answer in (("NOPE", "key 'NOPE'"), ("HR", "key 'HR'"), ("99999", "id '99999'")):
            missing = get(jira, f"/project/{ref}")
            assert missing.status_code == 404
            assert missing.json() == {"errorMessages": [f"No project could be found with {answer}."], "errors": {}}
        assert ok(jira, f"/project/{ops}")["key"] == "OPS"
        refused = get(jira, "/search/jql", jql="project = NOPE")
        assert refused.status_code == 400
        assert refused.json()["errorMessages"] == ["The value 'NOPE' does not exist for the field 'project'."]


def test_grants_name_groups_by_name_and_id_and_follow_renames_without_touching_issues(jira):
    sre = people(jira)
    jira.add_project("X", "scratch")
    role = jira.add_role("X", "Developers", users=["acc-ana"])
    jira.add_project("OPS", lead="acc-ana", browse=[("group", sre), ("role", role), ("user", "acc-ben"), ("anyone",),
                                                    ("applicationRole",), ("reporter",), ("projectLead",)])
    jira.add_issue("OPS", "Disk full", "text")
    scheme = ok(jira, "/project/OPS/permissionscheme")
    assert set(scheme) >= {"id", "name", "self"} and isinstance(scheme["id"], int)
    grants = ok(jira, f"/permissionscheme/{scheme['id']}/permission")["permissions"]
    browse = [g["holder"] for g in grants if g["permission"] == "BROWSE_PROJECTS"]
    assert browse == [
        {"type": "group", "parameter": "sre", "value": sre, "expand": "group"},
        {"type": "projectRole", "parameter": str(role), "value": str(role), "expand": "projectRole"},
        {"type": "user", "parameter": "acc-ben", "value": "acc-ben", "expand": "user"},
        {"type": "anyone"}, {"type": "applicationRole"}, {"type": "reporter"}, {"type": "projectLead"}]
    assert {g["permission"] for g in grants} > {"BROWSE_PROJECTS", "CREATE_ISSUES", "ADMINISTER_PROJECTS"}
    jira.advance(30)
    jira.rename_group(sre, "site-reliability")
    jira.set_browse("OPS", [("group", sre)])
    jira.set_members(sre, ["acc-ana"])
    [holder] = [g["holder"] for g in ok(jira, f"/permissionscheme/{scheme['id']}/permission")["permissions"]
                if g["permission"] == "BROWSE_PROJECTS"]
    assert holder == {"type": "group", "parameter": "site-reliability", "value": sre, "expand": "group"}
    assert keys(jira, 'project = OPS AND updated > "2026/11/30 08:00"') == []


def test_roles_are_site_wide_and_actor_changes_leave_issues_alone(jira):
    sre = people(jira)
    jira.add_project("OPS")
    jira.add_project("INC")
    devs = jira.add_role("OPS", "Developers", users=["acc-ben", "acc-ana"], groups=[sre])
    assert jira.add_role("INC", "Developers", users=["acc-cy"]) == devs       # one id per role name
    jira.add_issue("OPS", "Disk full", "text")
    assert ok(jira, "/project/OPS/role") == {"Developers": f"{jira.origin}{API}/project/{jira.project_by_key['OPS'].id}"
                                                            f"/role/{devs}"}
    role = ok(jira, f"/project/OPS/role/{devs}")
    assert (role["id"], role["name"]) == (devs, "Developers")
    assert [(a["type"], a["displayName"]) for a in role["actors"]] == [
        ("atlassian-user-role-actor", "Ana Ops"), ("atlassian-user-role-actor", "Ben Hidden"),
        ("atlassian-group-role-actor", "sre")]
    group_actor = role["actors"][2]
    assert group_actor["name"] == "sre" and group_actor["actorGroup"] == {"name": "sre", "displayName": "sre",
                                                                           "groupId": sre}
    assert role["actors"][0]["actorUser"] == {"accountId": "acc-ana"}
    jira.advance(5)
    jira.set_role_actors("OPS", devs, users=["acc-ana"])
    assert [a["actorUser"]["accountId"] for a in ok(jira, f"/project/OPS/role/{devs}")["actors"]] == ["acc-ana"]
    assert keys(jira, 'project = OPS AND updated > "2026/11/30 08:00"') == []
    assert get(jira, "/project/OPS/role/99999").status_code == 404


def test_security_levels_and_their_inclusive_member_filters(jira):
    sre = people(jira)
    jira.add_project("INC")
    jira.add_project("OPS", security_levels={"Staff": [("group", sre), ("reporter",)], "Secret": [("user", "acc-ben")]})
    scheme = ok(jira, "/project/OPS/issuesecuritylevelscheme")
    staff, secret = scheme["levels"]
    assert isinstance(scheme["id"], int) and (staff["name"], secret["name"]) == ("Staff", "Secret")
    assert set(staff) == {"self", "id", "name", "description"} and isinstance(staff["id"], str)
    none = get(jira, "/project/INC/issuesecuritylevelscheme")
    assert none.status_code == 404 and none.json()["errorMessages"]
    by_level = ok(jira, "/issuesecurityschemes/level/member", levelId=secret["id"])["values"]
    assert by_level == [{"id": by_level[0]["id"], "issueSecurityLevelId": secret["id"],
                         "issueSecuritySchemeId": str(scheme["id"]),
                         "holder": {"type": "user", "parameter": "acc-ben", "value": "acc-ben", "expand": "user"}}]
    union = ok(jira, "/issuesecurityschemes/level/member", schemeId=str(scheme["id"]), levelId=secret["id"])
    assert union["total"] == 3                                   # inclusive: all of the scheme, not the intersection
    old = ok(jira, f"/issuesecurityschemes/{scheme['id']}/members", issueSecurityLevelId=staff["id"])["values"]
    assert [m["holder"]["type"] for m in old] == ["group", "reporter"] and isinstance(old[0]["id"], int)
    jira.admin = False
    assert get(jira, "/issuesecurityschemes/level/member").status_code == 403
    assert get(jira, "/project/OPS/issuesecuritylevelscheme").status_code == 403


def test_search_pages_by_token_returns_ids_unless_fields_are_asked_and_old_search_is_gone(jira):
    jira.add_project("OPS")
    created = [jira.add_issue("OPS", f"Issue {n}", f"body {n}") for n in range(5)]
    seen, token, calls = [], None, 0
    while True:
        params = {"jql": "project = OPS ORDER BY key ASC", "maxResults": 2, "fields": "summary,status"}
        body = ok(jira, "/search/jql", **params, **({"nextPageToken": token} if token else {}))
        calls += 1
        seen += [(i["key"], i["fields"]["summary"]) for i in body["issues"]]
        assert all(set(i["fields"]) == {"summary", "status"} for i in body["issues"])
        token = body.get("nextPageToken")
        assert body["isLast"] == (token is None)
        if token is None:
            break
    assert calls == 3 and seen == [(k, f"Issue {n}") for n, k in enumerate(created)]
    assert ok(jira, "/search/jql", jql="project = OPS", maxResults=1)["issues"] == [
        {"id": jira.by_key[created[-1]].id}]                   # default: ids only, newest first
    posted = requests.post(f"{jira.origin}{API}/search/jql", auth=AUTH, timeout=5,
                           json={"jql": "project in (OPS) ORDER BY key DESC", "fields": ["summary"], "maxResults": 50})
    assert [i["key"] for i in posted.json()["issues"]] == created[::-1]
    gone = get(jira, "/search", jql="project = OPS")
    assert gone.status_code == 410 and "/rest/api/3/search/jql" in gone.json()["errorMessages"][0]
    assert get(jira, "/search/jql", jql="project = OPS", nextPageToken="garbage").status_code == 400


def test_jql_dates_are_minutes_in_the_service_accounts_zone_and_bad_jql_is_a_400(jira):
    jira.add_project("OPS")
    early = jira.add_issue("OPS", "early", "x")                      # 08:00:00 Berlin
    jira.clock = lambda: T0.replace(minute=5, second=30)
    late = jira.add_issue("OPS", "late", "x")                        # 08:05:30 Berlin
    assert ok(jira, f"/issue/{late}", fields="updated,created")["fields"] == {
        "updated": "2026-11-30T08:05:30.000+0100", "created": "2026-11-30T08:05:30.000+0100"}
    assert keys(jira, 'project = OPS AND updated >= "2026/11/30 08:05"') == [late]
    assert keys(jira, 'project = OPS AND updated > "2026-11-30 08:00" ORDER BY updated ASC') == [late]
    assert keys(jira, 'project = OPS AND updated >= "2026/11/30 08:00" ORDER BY updated ASC') == [early, late]
    assert keys(jira, 'project = OPS AND updated >= "2026/11/30 07:05" ORDER BY updated DESC') == [late, early]
    assert keys(jira, "project = OPS AND updated >= -3m") == [late]
    for jql, message in [("ORDER BY key", "Unbounded JQL queries are not allowed here"),
                         ("project = OPS AND updated >= tomorrow", "Date value 'tomorrow' for field 'updated'"),
                         ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
                         ("project = OPS AND", "Error in the JQL Query"),
                         ("project = OPS OR project = INC", "Error in the JQL Query"),
                         ("colour = red", "Field 'colour' does not exist")]:
        answer = get(jira, "/search/jql", jql=jql)
        assert answer.status_code == 400 and message in answer.json()["errorMessages"][0], jql
        assert answer.json()["errors"] == {}


def test_recorded_changes_bump_updated_and_comments_are_embedded_only_in_part(jira):
    sre = people(jira)
    jira.add_project("OPS", browse=[("group", sre)], security_levels={"Staff": [("group", sre)]})
    key = jira.add_issue("OPS", "Disk full", "The /var volume\nis full.\n\n- db-7\n- db-8",
                         comments=[f"note {n}" for n in range(6)] + [("acc-ben", "last")], reporter="acc-ben")
    issue = ok(jira, f"/issue/{key}")["fields"]
    assert issue["description"] == {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "The /var volume"}, {"type": "hardBreak"},
                                          {"type": "text", "text": "is full."}]},
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "db-7"}]}]},
            {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "db-8"}]}]}]}]}
    assert "emailAddress" not in issue["reporter"] and issue["reporter"]["displayName"] == "Ben Hidden"
    assert issue["security"] is None and issue["status"]["statusCategory"]["key"] == "new"
    embedded = ok(jira, "/search/jql", jql="project = OPS", fields="comment")["issues"][0]["fields"]["comment"]
    assert (len(embedded["comments"]), embedded["total"], embedded["startAt"]) == (5, 7, 0)
    rest = ok(jira, f"/issue/{key}/comment", startAt=5, maxResults=50)
    assert (rest["total"], rest["startAt"]) == (7, 5)
    assert [c["body"]["content"][0]["content"][0]["text"] for c in rest["comments"]] == ["note 5", "last"]
    assert rest["comments"][1]["author"]["accountId"] == "acc-ben" and set(rest["comments"][1]) >= {
        "id", "author", "body", "created", "updated"}
    for minute, change in enumerate([lambda: jira.comment(key, "more", author="acc-ana"),
                                     lambda: jira.set_security(key, "Staff"),
                                     lambda: jira.edit(key, summary="Disk full again")], start=1):
        jira.clock = lambda m=minute: T0.replace(minute=m)
        change()
        updated = ok(jira, f"/issue/{key}", fields="updated")["fields"]["updated"]
        assert updated == f"2026-11-30T08:0{minute}:00.000+0100"
    jira.clock = lambda: T0.replace(minute=9)
    jira.set_level_members("OPS", "Staff", [("user", "acc-ana")])
    jira.set_members(sre, [])
    assert ok(jira, f"/issue/{key}", fields="updated,security")["fields"]["updated"].startswith("2026-11-30T08:03")
    jira.delete(key)
    gone = get(jira, f"/issue/{key}")
    assert gone.status_code == 404 and gone.json() == {
        "errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}


def test_restricted_issues_are_hidden_only_when_permissions_are_enforced():
    with FakeJira(email=EMAIL, token=TOKEN, enforce_permissions=True) as jira:
        sre = people(jira)
        jira.add_project("OPS", browse=[("applicationRole", "jira-software")],
                         security_levels={"Staff": [("group", sre)], "Bots": [("user", jira.account_id)]})
        jira.add_project("HR", browse=[("group", sre)])                # the service account is not in sre
        public = jira.add_issue("OPS", "public", "x")
        staff = jira.add_issue("OPS", "staff only", "x", security="Staff", links=[("blocks", public)])
        bots = jira.add_issue("OPS", "bots", "x", security="Bots")
        assert sorted(keys(jira, "project = OPS")) == sorted([public, bots])
        assert get(jira, f"/issue/{staff}").status_code == 404
        assert get(jira, f"/issue/{staff}/comment").status_code == 404
        assert ok(jira, f"/issue/{public}", fields="issuelinks")["fields"]["issuelinks"] == []
        assert get(jira, "/search/jql", jql="project = HR").status_code == 400
        assert [p["key"] for p in ok(jira, "/project/search")["values"]] == ["OPS"]
        jira.enforce_permissions = False                               # the default: the account sees everything
        assert len(keys(jira, "project in (OPS, HR)")) == 3


def test_bulkfetch_leaves_out_what_is_gone_or_hidden_and_lists_only_retriable_errors():
    """As Jira documents it: issues that do not exist or that the caller may not see are in
    neither list; an IssueError is ``{"id", "errorMessage"}``, for what is worth asking again."""
    with FakeJira(email=EMAIL, token=TOKEN, enforce_permissions=True) as jira:
        sre = people(jira)
        jira.add_project("OPS", browse=[("applicationRole", "jira-software")],
                         security_levels={"Staff": [("group", sre)]})
        kept, hidden, gone, slow = (jira.add_issue("OPS", s, "x", security="Staff" if s == "hidden" else None)
                                    for s in ("kept", "hidden", "gone", "slow"))
        ids = {k: ok(jira, f"/issue/{k}", fields="summary")["id"] for k in (kept, gone, slow)}
        jira.delete(gone)
        jira.fail_in_bulk(slow)

        def bulk() -> dict:
            answer = requests.post(jira.origin + API + "/issue/bulkfetch", auth=AUTH, timeout=5,
                                   json={"issueIdsOrKeys": [kept, hidden, ids[gone], slow], "fields": ["project"]})
            assert answer.status_code == 200, answer.text
            return answer.json()

        first = bulk()
        assert [i["key"] for i in first["issues"]] == [kept]
        assert first["issueErrors"] == [{"id": ids[slow], "errorMessage": first["issueErrors"][0]["errorMessage"]}]
        again = bulk()                                                 # the error was for that call only
        assert [i["key"] for i in again["issues"]] == [kept, slow] and again["issueErrors"] == []


def test_groups_members_and_users_with_hidden_emails(jira):
    sre = people(jira)
    ops = jira.add_group("ops")
    assert ok(jira, "/group/bulk")["values"] == [{"name": "ops", "groupId": ops}, {"name": "sre", "groupId": sre}]
    active = ok(jira, "/group/member", groupId=sre)
    assert [u["accountId"] for u in active["values"]] == ["acc-ana", "acc-ben"] and active["isLast"]
    everyone = ok(jira, "/group/member", groupId=sre, includeInactiveUsers="true", maxResults=2)
    assert everyone["total"] == 3 and not everyone["isLast"] and "startAt=2" in everyone["nextPage"]
    assert get(jira, "/group/member", groupId="no-such-group").status_code == 404
    users = ok(jira, "/user/bulk", accountId=["acc-ana", "acc-ben", "acc-unknown"])["values"]
    assert [(u["accountId"], u.get("emailAddress"), u["active"]) for u in users] == [
        ("acc-ana", "ana@example.com", True), ("acc-ben", None, True)]
    assert "emailAddress" not in users[1]                               # absent, not null or ""
    for n in range(12):
        jira.add_user(f"acc-{n:02d}", f"user{n}@example.com")
    page = ok(jira, "/user/bulk", accountId=[f"acc-{n:02d}" for n in range(12)])
    assert (page["maxResults"], len(page["values"]), page["isLast"]) == (10, 10, False)
    assert get(jira, "/user/email", accountId="acc-ben").status_code == 401
    jira.email_api = True
    assert ok(jira, "/user/email", accountId="acc-ben") == {"accountId": "acc-ben", "email": "ben@example.com"}


def test_one_server_serves_the_action_side_and_the_read_side(jira):
    jira.add_project("OPS")
    first = jira.add_issue("OPS", "seeded", "x")
    answer = requests.post(f"{jira.origin}{API}/issue", auth=AUTH, timeout=5, json={"fields": {
        "project": {"key": "OPS"}, "summary": "from chat", "issuetype": {"name": "Bug"}, "labels": ["chatops"],
        "description": {"type": "doc", "version": 1, "content": []}}})
    assert answer.status_code == 201 and answer.json()["key"] == "OPS-2" and first == "OPS-1"
    assert jira.issues[0]["summary"] == "from chat"
    found = ok(jira, "/issue/OPS-2", fields="summary,issuetype,labels")["fields"]
    assert (found["summary"], found["issuetype"]["name"], found["labels"]) == ("from chat", "Bug", ["chatops"])
    assert jira.requests_by_path["POST /rest/api/3/issue"] == 1
    assert jira.requests_by_path["GET /rest/api/3/issue/{issue}"] == 1
