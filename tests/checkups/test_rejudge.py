"""Operators judge a tenant's checkups again after a new criteria version (manage.py rejudge_checkups):
earlier judgements stay, only records not yet judged under the current version are touched, re-running
does nothing more, and another tenant is never touched."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal as D

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from checkups import services
from checkups.models import CheckupRecord, CriteriaSet, Judgement
from checkups.services import checkup_judge, checkup_record_save
from tenants.context import tenant_context

VALUES = {"ldl": D("125"), "systolic": D("128"), "hba1c": D("5.5")}


@pytest.fixture
def judged(world):
    """Two judged records of tenant A (FY2024 and FY2025) and one of tenant B, all under the shipped version."""
    records = {}
    for tenant, member, day in (
        (world.tenant_a, world.roster_a[1], dt.date(2024, 6, 1)),
        (world.tenant_a, world.roster_a[2], dt.date(2025, 6, 1)),
        (world.tenant_b, world.roster_b[2], dt.date(2025, 6, 1)),
    ):
        with tenant_context(tenant):
            record = checkup_record_save(member=member, exam_date=day, program="regular", values=VALUES)
            checkup_judge(record=record)
            records[(tenant.slug, day.year)] = record
    return records


def _stricter_ldl() -> CriteriaSet:
    """The next version of the grading set: an LDL of 120 or more is D (it was B)."""
    old = CriteriaSet.objects.filter(name=services.GRADES_SET).latest("version")
    data = dict(old.data)
    data["items"] = {**old.data["items"], "ldl": {"bands": [["A", None], ["D", "120"]], "treated_by": "lipid"}}
    return services.criteria_version_create(
        name=services.GRADES_SET, title=old.title, effective_from=dt.date(2026, 4, 1), data=data, acting_user=None
    )


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("rejudge_checkups", *args, stdout=out, verbosity=0)
    return out.getvalue()


def test_a_new_version_is_applied_to_every_record_once_and_the_old_judgements_stay(world, judged):
    new_version = _stricter_ldl().version
    assert f"Records to judge again under uniform_grades_v1 v{new_version}: 2" in _run(
        "--tenant", "tenant-a", "--dry-run"
    )
    with tenant_context(world.tenant_a):
        assert Judgement.objects.count() == 2  # the dry run judged nothing
    assert f"Judged 2 records under uniform_grades_v1 v{new_version}" in _run("--tenant", "tenant-a")
    with tenant_context(world.tenant_a):
        for record in CheckupRecord.objects.all():
            old, new = record.judgements.order_by("judged_at", "pk")
            assert (old.criteria.version, old.grades["ldl"]) == (new_version - 1, "B")  # kept as it was
            assert (new.criteria.version, new.grades["ldl"]) == (new_version, "D")
        event = AuditEvent.objects.get(action="checkup.judged", details__rejudged=True)
        assert sorted(event.details["records"]) == sorted(CheckupRecord.objects.values_list("pk", flat=True))
    assert f"under uniform_grades_v1 v{new_version}: 0" in _run(
        "--tenant", "tenant-a"
    )  # nothing left: re-running adds nothing
    with tenant_context(world.tenant_a):
        assert Judgement.objects.count() == 4
    with tenant_context(world.tenant_b):  # another tenant waits for its own run
        assert judged[("tenant-b", 2025)].judgements.count() == 1


def test_a_fiscal_year_and_all_narrow_or_widen_what_is_judged(world, judged):
    _stricter_ldl()
    _run("--tenant", "tenant-a", "--fiscal-year", "2025")
    with tenant_context(world.tenant_a):
        assert judged[("tenant-a", 2025)].judgements.count() == 2
        assert judged[("tenant-a", 2024)].judgements.count() == 1
        assert services.checkup_rejudge_pending() == [judged[("tenant-a", 2024)].pk]
        assert len(services.checkup_rejudge_pending(everything=True)) == 2  # --all: after a guidance version
    assert "Judged 2 records" in _run("--tenant", "tenant-a", "--all")


def test_an_interrupted_run_is_finished_by_running_it_again(world, judged, monkeypatch):
    new_version = _stricter_ldl().version
    monkeypatch.setattr(services, "REJUDGE_CHUNK", 1)
    real_build, built = services.judgement_build, []

    def failing_second_chunk(**kwargs):
        built.append(kwargs["record"].pk)
        if len(built) == 2:
            raise RuntimeError("worker killed")
        return real_build(**kwargs)

    monkeypatch.setattr(services, "judgement_build", failing_second_chunk)
    with tenant_context(world.tenant_a):
        pending = services.checkup_rejudge_pending()
    with pytest.raises(RuntimeError):
        services.checkup_rejudge(tenant=world.tenant_a, record_ids=pending)
    monkeypatch.setattr(services, "judgement_build", real_build)
    with tenant_context(world.tenant_a):
        assert len(services.checkup_rejudge_pending()) == 1  # the first chunk was kept, the second rolled back
    _run("--tenant", "tenant-a")
    with tenant_context(world.tenant_a):
        assert services.checkup_rejudge_pending() == []
        assert Judgement.objects.filter(criteria__version=new_version).count() == 2  # each record once
