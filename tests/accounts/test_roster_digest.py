"""Roster digests: a re-import finds the rows that the import itself last wrote unchanged without
decrypting the entries; anything else that changes an entry makes the next import compare it in full."""

from __future__ import annotations

import pytest
from django.db import transaction

from accounts import roster_import
from accounts.models import Member
from accounts.selectors import member_get_by_employee_number
from tenants.context import tenant_context
from tests.accounts.test_roster_import import apply, members, person, roster_csv, run, validate

pytestmark = pytest.mark.usefixtures("private_storage")


@pytest.fixture
def opened(monkeypatch) -> list[int]:
    """How many stored entries the import decrypted, one count per entry."""
    calls: list[int] = []
    real = roster_import.open_row
    monkeypatch.setattr(roster_import, "open_row", lambda *a: calls.append(1) or real(*a))
    return calls


ROWS = [person("D1", "佐藤 一郎", email="d1@example.jp"), person("D2", "鈴木 二郎"), person("D3", "高橋 三郎")]


def test_a_reimport_of_the_unchanged_file_decrypts_nothing_and_finds_every_row_unchanged(world, opened):
    run(world.tenant_a, roster_csv(ROWS))
    opened.clear()
    job = validate(world.tenant_a, roster_csv(ROWS))
    assert (job.counts["added"], job.counts["updated"], job.counts["unchanged"]) == (0, 0, 3)
    assert opened == []
    job = apply(world.tenant_a, job)
    assert job.counts["applied"]["unchanged"] == 3 and opened == []


def test_an_entry_edited_outside_the_import_is_compared_in_full_and_set_back_to_the_file(world, opened):
    run(world.tenant_a, roster_csv(ROWS))
    with tenant_context(world.tenant_a):
        edited = member_get_by_employee_number("D2")
        edited.kana_name = "スズキ ジロー"  # by hand, on the roster page
        edited.save()
    opened.clear()
    job = validate(world.tenant_a, roster_csv(ROWS))
    assert (job.counts["updated"], job.counts["unchanged"]) == (1, 2)
    assert len(opened) == 1  # that entry alone
    apply(world.tenant_a, job)
    assert members(world.tenant_a)["D2"].kana_name == "ヤマダ タロウ"  # the file's again


def test_saving_what_a_roster_row_does_not_set_keeps_the_digest(world):
    run(world.tenant_a, roster_csv(ROWS))
    with tenant_context(world.tenant_a):
        member = member_get_by_employee_number("D1")
        digest = member.roster_digest
        assert digest
        member.is_active = False  # deactivated by hand: compared in the clear, whatever the digest
        member.save(update_fields=["is_active", "updated_at"])
        member.refresh_from_db()
        assert member.roster_digest == digest
        member.name = "佐藤 一朗"
        member.save(update_fields=["name"])
        member.refresh_from_db()
        assert member.roster_digest is None


def test_the_blank_rule_is_part_of_the_digest(world):
    """A row written under "blanks keep the stored value" holds what it would write under that rule only:
    the same file uploaded with "blanks clear" still clears."""
    run(world.tenant_a, roster_csv([person("D1", email="d1@example.jp")]))
    sparse = roster_csv([person("D1", "山田 太一", email="")])
    job = run(world.tenant_a, sparse)  # keeps the e-mail, changes the name: the row's digest is stored
    assert job.counts["applied"]["updated"] == 1 and members(world.tenant_a)["D1"].email == "d1@example.jp"
    job = validate(world.tenant_a, sparse, clear_blanks=True)
    assert job.counts["updated"] == 1
    apply(world.tenant_a, job)
    assert members(world.tenant_a)["D1"].email == ""


def test_entries_without_a_digest_get_it_from_an_unchanged_row_and_are_not_decrypted_next_time(world, opened):
    with tenant_context(world.tenant_a):  # entered by hand before any import
        Member.objects.create(employee_number="D9", name="山田 太郎", kana_name="ヤマダ タロウ", sex="male")
    file = roster_csv([person("D9", office="", dept="", birth="")])
    job = run(world.tenant_a, file)
    assert (job.counts["unchanged"], job.counts["applied"]["unchanged"], job.counts["applied"]["updated"]) == (1, 1, 0)
    assert members(world.tenant_a)["D9"].roster_digest
    opened.clear()
    job = validate(world.tenant_a, file)
    assert job.counts["unchanged"] == 1 and opened == []


def test_an_entry_saved_after_the_apply_compared_it_keeps_no_digest(world):
    """The apply writes what it found different; a change someone saves between its comparison and its
    write stays, and the entry must not get a digest saying it holds what the file says."""
    run(world.tenant_a, roster_csv(ROWS))
    changed = roster_csv([person("D1", "佐藤 一朗", email="d1@example.jp")])
    job = validate(world.tenant_a, changed)
    assert job.counts["updated"] == 1
    with tenant_context(world.tenant_a):
        job = roster_import.roster_import_confirm(job=job, acting_user=None, enqueue=False, acknowledged=True)
        prepared = roster_import._prepare_chunk(job, 0)
        hand = member_get_by_employee_number("D1")
        hand.kana_name = "サトウ イチロー"
        hand.save()
        with transaction.atomic():
            roster_import.roster_import_apply_step(job_id=job.pk, prepared=prepared)
        stored = member_get_by_employee_number("D1")
    assert (stored.name, stored.kana_name, stored.roster_digest) == ("佐藤 一朗", "サトウ イチロー", None)
    job = validate(world.tenant_a, changed)
    assert job.counts["updated"] == 1  # the kana is the file's again once applied
