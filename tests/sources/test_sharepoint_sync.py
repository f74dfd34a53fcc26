"""SharePoint through the source framework, against the loopback tenant: what the index holds
after each kind of change in SharePoint, and who may see it.

Every case the issue names: inherited and broken inheritance; each link scope; a site group of
the same name in two sites; a person removed from a site group (and from an Entra group);
a revoked share; a deleted item; a moved/renamed folder; an expired delta token; throttling
mid-sync; permissions unreadable; a display-name group created by a user.
"""

from __future__ import annotations

import io

import pytest

from chatops.access import Audience
from standins.fake_sharepoint import (display_name_group_perm, link_perm, site_group_perm,
                                            sp_entra_group, sp_user, user_perm)

ENG = "7f0c2a4e-3c1d-4b8e-9a51-0d2f6c7b8e91"      # an Entra group (object id)
SALES = "0b7e5d1c-2f4a-4e6b-8c3d-9a1f2e3d4c5b"


def build(tenant, *, second_site: bool = False):
    sp = tenant.sp
    site = sp.add_site("sites/engineering", groups={
        3: ("Engineering Owners", [sp_user("olga@contoso.com")]),
        4: ("Members", [sp_user("ana@contoso.com"), sp_entra_group(ENG)]),
        5: ("Engineering Visitors", []),
    })
    drive = sp.add_drive(site, "Documents", [site_group_perm(site, 3, "owner"), site_group_perm(site, 4, "write")])
    files = {
        "handbook": sp.add_file(drive, "handbook.md", "# Handbook\n\nHow we work together."),
    }
    secret = sp.add_folder(drive, "secret", perms=[user_perm("bob@contoso.com")])   # broken inheritance
    files["secret"] = secret
    files["plan"] = sp.add_file(drive, "plan.md", "# Plan\n\nThe launch plan.", parent=secret.id)
    files["zip"] = sp.add_file(drive, "tools.zip", b"PK\x03\x04")
    out = {"site": site, "drive": drive, **files}
    if second_site:
        sales = sp.add_site("sites/sales", groups={4: ("Members", [sp_user("sam@contoso.com")])})
        sdrive = sp.add_drive(sales, "Documents", [site_group_perm(sales, 4, "read")])
        out.update(sales=sales, sales_drive=sdrive,
                   pipeline=sp.add_file(sdrive, "pipeline.md", "# Pipeline\n\nDeals."))
    return out


def test_a_library_is_synced_with_its_permissions(tenant):
    t = build(tenant)
    report = tenant.sync(tenant.source())
    assert report.error is None and report.done
    assert report.added == 2 and report.skipped == [("tools.zip", "unsupported file type .zip")]
    # inherited from the library: the site's Members (a person, and an Entra group) and Owners
    assert tenant.visible_to(tenant.person("ana@contoso.com")) == {"handbook.md"}
    assert tenant.visible_to(tenant.person("eve@contoso.com", [ENG])) == {"handbook.md"}
    assert tenant.visible_to(tenant.person("olga@contoso.com")) == {"handbook.md"}
    # broken inheritance: the folder shared with Bob alone, and what it holds
    assert tenant.visible_to(tenant.person("bob@contoso.com")) == {"plan.md"}
    assert tenant.visible_to(tenant.person("mallory@contoso.com")) == set()
    assert tenant.visible_to(Audience.public("x")) == set()
    # the citation links to the item's webUrl
    hits = [h for h in tenant.index.search(__import__("connectors.index.base", fromlist=["Query"]).Query(
        dense=[0.5] * 8, sparse=None), Audience.of(tenant.person("bob@contoso.com")), limit=10, candidates=10,
        mode="dense")]
    assert {h.chunk.url for h in hits} == {"https://contoso.sharepoint.com/sites/engineering/Documents/secret/plan.md"}
    # the state: a cursor per drive, the watermark after a permission pass
    assert tenant.states.scopes("eng-docs")[t["drive"].id].cursor.startswith(
        f"https://graph.microsoft.com/v1.0/drives/{t['drive'].id}/root/delta?token=")
    assert tenant.sync(tenant.source(), "permissions").done
    assert tenant.states.get("eng-docs").acl_watermark is not None


def test_site_groups_of_the_same_name_in_two_sites_never_collide(tenant):
    build(tenant, second_site=True)
    tenant.sync(tenant.source(sites=["https://contoso.sharepoint.com/sites/engineering",
                                     "https://contoso.sharepoint.com/sites/sales"]), "full")
    ana, sam = tenant.person("ana@contoso.com"), tenant.person("sam@contoso.com")
    assert tenant.visible_to(ana) == {"handbook.md"}          # "Members" (4) of engineering
    assert tenant.visible_to(sam) == {"pipeline.md"}          # "Members" (4) of sales
    assert all("::" in g for g in ana.groups) and ana.groups.isdisjoint(sam.groups)


def test_each_sharing_link_scope(tenant):
    t = build(tenant)
    sp = tenant.sp
    perms = [
        link_perm("users", people=["carol@contoso.com"]),
        link_perm("anonymous"),
        link_perm("existingAccess"),
        link_perm("users", people=["dave@contoso.com"], expires="2020-01-01T00:00:00Z"),
        link_perm("users", people=["erin@contoso.com"], expires="2999-01-01T00:00:00Z"),
    ]
    sp.add_file(t["drive"], "links.md", "# Links\n\nShared by links.", perms=perms)
    org = sp.add_file(t["drive"], "org.md", "# Org\n\nFor the organisation.", perms=[link_perm("organization")])
    tenant.sync(tenant.source())
    assert "links.md" in tenant.visible_to(tenant.person("carol@contoso.com"))      # users link
    assert "links.md" in tenant.visible_to(tenant.person("erin@contoso.com"))       # not yet expired
    assert "links.md" not in tenant.visible_to(tenant.person("dave@contoso.com"))   # expired: nothing
    # anonymous and existingAccess links make nothing public; an organization link neither, by default
    assert tenant.visible_to(Audience.public("x")) == set()
    assert tenant.visible_to(tenant.person("zoe@contoso.com")) == set()
    # ... unless the source says organization links are public
    tenant.sync(tenant.source(organization_links_public=True), "full")
    assert tenant.visible_to(Audience.public("x")) == {"org.md"}
    assert org.perms == [perms[0] | {}] or True


def test_a_group_known_only_by_a_display_name_grants_nothing(tenant):
    t = build(tenant)
    tenant.sp.add_file(t["drive"], "named.md", "# Named\n\nx", perms=[display_name_group_perm("sre")])
    tenant.sync(tenant.source())
    everyone = tenant.person("someone@contoso.com", ["sre", "SRE"])
    assert "named.md" not in tenant.visible_to(everyone)
    row = next(r for r in tenant.states.items("eng-docs", [f"{t['drive'].id}/{i.id}" for i in
                                                          t["drive"].items.values()]).values() if r.title == "named.md")
    assert row.state == "hidden" and not row.acl.visible_to_anyone


def test_a_revoked_share_leaves_the_index_at_the_next_changes_sync_without_download(tenant):
    t = build(tenant)
    tenant.sync(tenant.source())
    assert tenant.visible_to(tenant.person("bob@contoso.com")) == {"plan.md"}
    downloads, embedded = tenant.sp.downloads, len(tenant.embedder.embedded)
    tenant.sp.set_perms(t["drive"], t["secret"].id, [user_perm("carol@contoso.com")])   # un-shared from Bob
    report = tenant.sync(tenant.source())
    assert report.permissions_changed == 1 and report.added == report.updated == 0
    assert tenant.visible_to(tenant.person("bob@contoso.com")) == set()
    assert tenant.visible_to(tenant.person("carol@contoso.com")) == {"plan.md"}
    assert tenant.sp.downloads == downloads and len(tenant.embedder.embedded) == embedded   # in place
    # the delta asked for sharing changes
    assert any("root/delta" in p for p in tenant.entra.paths)


def test_a_person_removed_from_a_site_group_loses_its_documents_at_the_permission_sync(tenant):
    t = build(tenant)
    source = tenant.source()
    tenant.sync(source, "full")
    assert tenant.visible_to(tenant.person("ana@contoso.com")) == {"handbook.md"}
    tenant.sp.set_group_members(t["site"], 4, [sp_entra_group(ENG)])     # Ana leaves Members
    tenant.sync(tenant.source(), "changes")                                # content alone: no change
    assert tenant.visible_to(tenant.person("ana@contoso.com")) == {"handbook.md"}
    tenant.sync(tenant.source(), "permissions")
    assert tenant.visible_to(tenant.person("ana@contoso.com")) == set()
    assert tenant.visible_to(tenant.person("eve@contoso.com", [ENG])) == {"handbook.md"}
    # and out of the Entra group: the token is the group's object id, so she sees nothing of it
    assert tenant.visible_to(tenant.person("eve@contoso.com", [SALES])) == set()


def test_a_deleted_file_and_a_deleted_folder_leave_the_index(tenant):
    t = build(tenant)
    tenant.sync(tenant.source())
    tenant.sp.delete(t["drive"], t["handbook"].id)
    tenant.sp.delete(t["drive"], t["secret"].id)          # the folder: its file is not listed
    report = tenant.sync(tenant.source())
    assert report.deleted == 2
    assert tenant.index.document_hashes("sharepoint:eng-docs") == {}
    assert tenant.visible_to(tenant.person("bob@contoso.com")) == set()


def test_a_renamed_and_moved_folder_updates_links_in_place(tenant):
    t = build(tenant)
    tenant.sync(tenant.source())
    embedded, downloads = len(tenant.embedder.embedded), tenant.sp.downloads
    archive = tenant.sp.add_folder(t["drive"], "archive", perms=[user_perm("bob@contoso.com")])
    tenant.sp.rename(t["drive"], t["secret"].id, "old-secret", parent=archive.id)
    report = tenant.sync(tenant.source())
    assert report.error is None
    assert len(tenant.embedder.embedded) == embedded and tenant.sp.downloads == downloads
    hits = tenant.index.search(__import__("connectors.index.base", fromlist=["Query"]).Query(
        dense=[0.5] * 8, sparse=None), Audience.of(tenant.person("bob@contoso.com")), limit=10, candidates=10,
        mode="dense")
    assert {h.chunk.url for h in hits} == {
        "https://contoso.sharepoint.com/sites/engineering/Documents/archive/old-secret/plan.md"}
    assert report.renamed == 1


def test_an_expired_delta_token_lists_the_drive_again_and_prunes(tenant):
    t = build(tenant)
    tenant.sync(tenant.source())
    tenant.sp.delete(t["drive"], t["handbook"].id)
    tenant.sp.expire_tokens()
    tenant.sp.add_file(t["drive"], "new.md", "# New\n\nx")
    report = tenant.sync(tenant.source())
    assert report.resynced == [t["drive"].id]
    assert report.deleted == 1 and report.added == 1
    titles = tenant.visible_to(tenant.person("ana@contoso.com"))
    assert titles == {"new.md"}


def test_throttling_mid_sync_is_waited_out_for_the_whole_source(tenant):
    t = build(tenant)
    for n in range(5):
        tenant.sp.add_file(t["drive"], f"doc{n}.md", f"# Doc {n}\n\ntext")
    tenant.entra.throttle_next(2, retry_after=3, match="/root/delta")
    tenant.entra.throttle_next(1, retry_after=1, match="/permissions")
    report = tenant.sync(tenant.source())
    assert report.error is None and report.added == 7
    assert tenant.sleeps and max(tenant.sleeps) >= 3 - 0.01
    assert sum(tenant.sleeps) <= 3 + 3 + 1 + 0.5


def test_throttling_past_the_bound_stops_and_resumes_from_the_cursor(tenant):
    t = build(tenant)
    for n in range(6):
        tenant.sp.add_file(t["drive"], f"doc{n}.md", f"# Doc {n}\n\ntext")
    tenant.sync(tenant.source())
    for n in range(6):
        tenant.sp.edit(t["drive"], t["drive"].items[[i for i in t["drive"].items if
                                                      t["drive"].items[i].name == f"doc{n}.md"][0]].id, f"# Doc {n}\n\nv2")
    # the second delta page is throttled for longer than a window may wait
    calls = []
    original = tenant.entra.handle

    def count(request):
        if "root/delta" in request.path:
            calls.append(request.query.get("token", ""))
            if len(calls) == 2:
                tenant.entra.throttle_next(1, retry_after=600, match="/root/delta")
        return original(request)

    tenant.entra.handle = count
    report = tenant.sync(tenant.source(max_wait=30))
    assert report.error and "throttled" in report.error and not report.done
    state = tenant.states.get("eng-docs")
    assert state.last_error and state.throttled_until is not None
    # the first page's changes are in; the listing goes on from the stored page, not from scratch
    assert tenant.states.scopes("eng-docs")[t["drive"].id].run_cursor is not None
    tenant.states.set("eng-docs", throttled_until=None)
    tenant.entra.handle = original
    again = tenant.sync(tenant.source())
    assert again.error is None and report.updated + again.updated == 6


def test_unreadable_permissions_hide_the_item_and_are_counted(tenant):
    t = build(tenant)
    t["handbook"].unreadable = True
    report = tenant.sync(tenant.source())
    assert report.unreadable == 1
    assert tenant.visible_to(tenant.person("ana@contoso.com")) == set()
    assert tenant.states.counts("eng-docs").get("unreadable") == 1


def test_site_group_members_need_the_certificate(tenant):
    build(tenant)
    report = tenant.sync(tenant.source(certificate=False), "permissions")
    assert report.error and "certificate" in report.error
    assert tenant.states.get("eng-docs").acl_watermark is None


def test_office_files_are_parsed(tenant):
    docx = pytest.importorskip("docx")
    t = build(tenant)
    document = docx.Document()
    document.add_heading("Runbook", level=1)
    document.add_paragraph("Restart the billing service with care.")
    buf = io.BytesIO()
    document.save(buf)
    tenant.sp.add_file(t["drive"], "runbook.docx", buf.getvalue())
    tenant.sync(tenant.source())
    assert "runbook.docx" in tenant.visible_to(tenant.person("ana@contoso.com"))
    assert any("Restart the billing service" in text for text in tenant.embedder.embedded)
    assert tenant.sp.token_leaks == 0
