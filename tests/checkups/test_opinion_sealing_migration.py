"""Migrations 0014 and 0015: a physician's opinion text stored in clear is sealed in place, then sealed again
under the row's new uid; it opens as it was, and goes back to clear text when the migrations are reversed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from tests.checkups.test_results_migration import ON_SQLITE, _migrate

BEFORE = [("checkups", "0013_grade_snapshot_merged")]
AFTER = [("checkups", "0015_opinion_uid")]
TEXT = "残業は月20時間まで。三か月後に再検査。"


@pytest.mark.skipif(connection.vendor != "sqlite", reason=ON_SQLITE)
def test_an_opinion_in_clear_is_sealed_by_the_migration_and_opened_back(transactional_db):
    from django.db.migrations.executor import MigrationExecutor

    from accounts.models import Role
    from accounts.services import member_create, user_create
    from checkups.models import CheckupRecord, PhysicianOpinion
    from tenants.context import tenant_context
    from tenants.services import tenant_create

    _migrate(BEFORE)
    try:
        tenant = tenant_create(kind="company", name="移行テスト", slug="mig")
        with tenant_context(tenant):
            member = member_create(employee_number="M1", name="移行 太郎")
            doctor = user_create(email="mig-doc@example.jp", role=Role.PHYSICIAN, tenant=tenant,
                                 password="Mig-Doctor-Passw0rd!")  # fmt: skip
            record = CheckupRecord.objects.create(tenant=tenant, member=member, exam_date=dt.date(2025, 6, 2),
                                                  fiscal_year=2025, program="regular")  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO checkups_physicianopinion (tenant_id, record_id, fitness, restrictions, follow_up, "
                "opinion, signed_by_id, signed_at) VALUES (%s, %s, 'restricted', '[]', 'recheck', %s, %s, "
                "'2025-06-20')",
                [tenant.pk, record.pk, TEXT, doctor.pk],
            )
            cursor.execute("INSERT INTO checkups_physicianopinion (tenant_id, record_id, fitness, restrictions, "
                           "follow_up, opinion, signed_by_id, signed_at) VALUES (%s, %s, 'normal', '[]', 'none', '', "
                           "%s, '2025-06-21')", [tenant.pk, record.pk, doctor.pk])  # fmt: skip
        _migrate(AFTER)
        with connection.cursor() as cursor:
            cursor.execute("SELECT opinion FROM checkups_physicianopinion ORDER BY id")
            stored = [row[0] for row in cursor.fetchall()]
        assert stored[1] is None  # an empty opinion stays empty (NULL), not a sealed ""
        assert isinstance(stored[0], bytes) and TEXT.encode() not in stored[0] and "残業".encode() not in stored[0]
        with tenant_context(tenant):
            assert [str(o.opinion) for o in PhysicianOpinion.objects.order_by("pk")] == [TEXT, ""]
            assert len({o.uid for o in PhysicianOpinion.objects.all()}) == 2
        _migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute("SELECT opinion FROM checkups_physicianopinion ORDER BY id")
            assert [row[0] for row in cursor.fetchall()] == [TEXT, ""]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
