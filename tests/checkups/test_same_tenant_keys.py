"""A checkup result or judgement can only belong to a record of its own tenant: the database refuses
anything else.

Row-level security checks a row's own tenant_id; PostgreSQL's foreign-key checks ignore policies, so a
plain key on record_id would let tenant A's session attach a result to tenant B's record. The one
foreign key of results and judgements to their record is (tenant_id, record_id) → the record's
(tenant_id, id) (tenants.migration_ops).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from psycopg import errors

from checkups.models import CheckupRecord, CheckupResult, Judgement
from checkups.services import checkup_judge, checkup_record_save
from tenants.context import tenant_context

pytestmark = pytest.mark.postgres


def _connect(role: str) -> psycopg.Connection:
    from healthapp.db import app_role_name, owner_role_name

    params = connection.get_connection_params()
    params["user"] = app_role_name() if role == "app" else owner_role_name()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


INSERTS = {
    "checkupresult": "INSERT INTO checkups_checkupresult (tenant_id, record_id, item, value, text, unit, "
    "unit_as_given, code, interpretation) VALUES (%s, %s, 'ldl', 120, '', 'mg/dL', '', '', '')",
    "judgement": "INSERT INTO checkups_judgement (tenant_id, record_id, criteria_id, grades, overall, mhlw, "
    "metabolic_syndrome, guidance_level, judged_at) "
    "SELECT %s, %s, id, '{}', 'A', '{}', '', 'canary', now() FROM checkups_criteriaset LIMIT 1",
}


def _insert(cur, table: str, tenant_id: int, record_id: int) -> None:
    cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant_id)])
    cur.execute(INSERTS[table], [tenant_id, record_id])
    assert cur.rowcount == 1
    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred check, now rather than at the commit


@pytest.fixture
def records(committed_world):
    """Tenant A's and tenant B's record ids (B's comes with the world)."""
    with tenant_context(committed_world.tenant_a):
        own = checkup_record_save(
            member=committed_world.roster_a[1], exam_date=dt.date(2025, 4, 1), program="regular",
            values={"hba1c": Decimal("5.4")},
        )  # fmt: skip
    with tenant_context(committed_world.tenant_b):
        foreign = CheckupRecord.objects.values_list("pk", flat=True).first()
    assert foreign is not None
    return committed_world, own.pk, foreign


@pytest.mark.parametrize("table", INSERTS)
def test_the_only_key_to_the_record_is_the_same_tenant_one(transactional_db, table):
    with _connect("owner") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f' AND pg_get_constraintdef(oid) LIKE %s",
            [f"checkups_{table}", "%checkups_checkuprecord%"],
        )
        assert cur.fetchall() == [
            (
                f"{table}_record_same_tenant",
                "FOREIGN KEY (tenant_id, record_id) REFERENCES checkups_checkuprecord(tenant_id, id) "
                "DEFERRABLE INITIALLY DEFERRED",
            )
        ]
        cur.execute(  # and no key of its own to the tenant: the record's key covers it
            "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' "
            "AND confrelid = 'tenants_tenant'::regclass",
            [f"checkups_{table}"],
        )
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize("table", INSERTS)
def test_tenant_a_cannot_attach_a_row_to_tenant_bs_record(records, table):
    world, own, foreign = records
    with _connect("app") as conn:
        with pytest.raises(errors.ForeignKeyViolation), conn.transaction(), conn.cursor() as cur:
            _insert(cur, table, world.tenant_a.pk, foreign)
        with pytest.raises(errors.ForeignKeyViolation), conn.transaction(), conn.cursor() as cur:
            _insert(cur, table, world.tenant_a.pk, 10**12)  # no such record at all
        with conn.transaction(), conn.cursor() as cur:
            _insert(cur, table, world.tenant_a.pk, own)  # its own record: accepted
    with tenant_context(world.tenant_a):
        assert CheckupResult.objects.filter(record_id=own, item="ldl").exists() == (table == "checkupresult")
        assert Judgement.objects.filter(record_id=own, guidance_level="canary").exists() == (table == "judgement")
    with tenant_context(world.tenant_b):
        assert not CheckupResult.objects.filter(record_id=foreign, item="ldl").exists()
        assert not Judgement.objects.filter(record_id=foreign, guidance_level="canary").exists()


def test_deleting_a_record_still_deletes_its_results_and_judgements(records):
    world, own, _foreign = records
    with tenant_context(world.tenant_a):
        checkup_judge(record=CheckupRecord.objects.get(pk=own))
        assert CheckupResult.objects.filter(record_id=own).exists() and Judgement.objects.filter(record_id=own).exists()
        CheckupRecord.objects.get(pk=own).delete()
        assert not CheckupResult.objects.filter(record_id=own).exists()
        assert not Judgement.objects.filter(record_id=own).exists()
