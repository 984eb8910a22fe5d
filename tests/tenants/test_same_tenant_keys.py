"""A row can only refer to a row of its own tenant: the database refuses anything else.

Row-level security checks a row's own tenant_id; PostgreSQL's foreign-key checks ignore policies, so a
plain key on record_id would let tenant A's session attach a result to tenant B's record, or a member
to B's office. Every relation between tenant tables is a same-tenant key, (tenant_id, <column>) → the
target's (tenant_id, id) (tenants.keys).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors

from accounts.models import Member
from accounts.services import user_create
from checkups.models import CheckupCorrection, CheckupRecord, Judgement
from checkups.services import checkup_judge, checkup_record_save
from healthapp.checks import check_application_role, check_same_tenant_keys
from tenants import keys
from tenants.context import tenant_context
from tenants.models import Department, Office
from tests.conftest import TEST_PASSWORD
from tests.tenants.test_rls_postgres import _connect

postgres = pytest.mark.postgres


INSERTS = {
    "checkupcorrection": "INSERT INTO checkups_checkupcorrection (tenant_id, record_id, results, institution, "
    "questionnaire, source, source_sha256, corrected_at) VALUES (%s, %s, '[]', 'canary', '{}', '', '', now())",
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


def test_every_relation_between_tenant_models_is_declared_a_same_tenant_key():
    assert len(keys.tenant_relations()) >= 12  # offices, members, grants, teams, checkups…
    assert keys.violations() == []
    assert check_same_tenant_keys() == []


def test_a_plain_foreign_key_between_tenant_models_fails_the_system_check(monkeypatch):
    plain = Judgement._meta.get_field("criteria")  # a plain ForeignKey, standing in for one to a tenant model
    monkeypatch.setattr(keys, "tenant_relations", lambda app_config=None: [(Judgement, plain)])
    errors = check_same_tenant_keys()
    assert [(e.id, e.msg) for e in errors] == [
        (
            "healthapp.E005",
            "checkups.Judgement.criteria: a plain ForeignKey to another tenant's table; use SameTenantForeignKey",
        )
    ]


@postgres
def test_every_relation_between_tenant_tables_is_a_same_tenant_key_in_the_database(transactional_db):
    assert check_application_role(databases=["default"]) == []  # the deploy check, as the application role
    with _connect("owner") as conn, conn.cursor() as cur:
        assert keys.violations(cur) == []
        # records and judgements: no key of their own to the tenant, the same-tenant key covers it (an import
        # pays one check per written row, not two)
        foreign = "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'"
        cur.execute(foreign, ["checkups_checkuprecord"])
        assert [row[0] for row in cur.fetchall()] == [
            "FOREIGN KEY (tenant_id, member_id) REFERENCES accounts_member(tenant_id, id) DEFERRABLE INITIALLY DEFERRED"
        ]
        cur.execute(foreign, ["checkups_judgement"])
        assert not [row[0] for row in cur.fetchall() if "tenants_tenant" in row[0]]


@postgres
def test_a_missing_or_plain_key_is_reported(transactional_db):
    with _connect("owner") as conn, conn.transaction() as tx, conn.cursor() as cur:
        cur.execute("ALTER TABLE accounts_member DROP CONSTRAINT accounts_member_office_id_same_tenant")
        assert keys.violations(cur) == [
            "accounts.Member.office: the database has no foreign key, not FOREIGN KEY (tenant_id, office_id_unproven) "
            "REFERENCES tenants_office(tenant_id, id) DEFERRABLE INITIALLY DEFERRED"
        ]
        cur.execute("ALTER TABLE accounts_member ADD FOREIGN KEY (office_id) REFERENCES tenants_office (id)")
        assert keys.violations(cur) == [
            "accounts.Member.office: the database has ['FOREIGN KEY (office_id) REFERENCES tenants_office(id)'], "
            "not FOREIGN KEY (tenant_id, office_id_unproven) REFERENCES tenants_office(tenant_id, id) DEFERRABLE "
            "INITIALLY DEFERRED"
        ]
        cur.execute("ALTER TABLE accounts_member DROP CONSTRAINT accounts_member_tenant_id_unproven_fk")
        assert keys.violations(cur)[-1] == (
            "accounts.Member.tenant: the database has no key to the tenant, not FOREIGN KEY (tenant_id_unproven) "
            "REFERENCES tenants_tenant(id) DEFERRABLE INITIALLY DEFERRED"
        )
        raise psycopg.Rollback(tx)  # the constraints as they were


@postgres
def test_an_upgraded_database_gets_the_keys_as_declared(transactional_db):
    """A database from before a key changed (the member's department key without the office, the office key
    on every row, Django's key to the tenant) is brought to the declared keys by the next migrate."""
    with _connect("owner") as conn, conn.transaction() as tx, conn.cursor() as cur:
        cur.execute("ALTER TABLE accounts_member DROP CONSTRAINT accounts_member_department_id_same_tenant")
        cur.execute("ALTER TABLE accounts_member DROP CONSTRAINT accounts_member_office_id_same_tenant")
        cur.execute("ALTER TABLE accounts_member DROP CONSTRAINT accounts_member_tenant_id_unproven_fk")
        cur.execute("ALTER TABLE accounts_member DROP COLUMN office_id_unproven, DROP COLUMN tenant_id_unproven")
        cur.execute(
            "ALTER TABLE accounts_member ADD CONSTRAINT accounts_member_department_id_same_tenant FOREIGN KEY "
            "(tenant_id, department_id) REFERENCES tenants_department (tenant_id, id) DEFERRABLE INITIALLY DEFERRED"
        )
        assert len(keys.violations(cur)) == 3
        keys.ensure_keys(cur, keys.tenant_relations())
        keys.ensure_tenant_keys(cur, [Member])
        assert keys.violations(cur) == []
        raise psycopg.Rollback(tx)


@postgres
def test_a_key_that_existing_rows_break_is_refused_with_where_to_look(committed_world):
    a, member = committed_world.tenant_a, committed_world.roster_a[1]
    with _connect("owner") as conn, conn.transaction() as tx, conn.cursor() as cur:
        cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(a.pk)])  # RLS is forced on the owner too
        cur.execute("ALTER TABLE accounts_member DROP CONSTRAINT accounts_member_office_id_same_tenant")
        cur.execute(  # no department: the office key is the one that checks this row
            "UPDATE accounts_member SET office_id = %s, department_id = NULL WHERE id = %s",
            [committed_world.roster_b[0].office_id, member.pk],
        )
        with pytest.raises(keys.CrossTenantRows) as refused, conn.transaction():  # a savepoint
            keys.ensure_keys(cur, [(Member, Member._meta.get_field("office"))])
        message = str(refused.value)
        assert message.startswith("accounts_member.office_id: some rows refer to a row of tenants_office of another")
        cur.execute(message.split("with: ", 1)[1])  # the query it gives finds exactly the broken row
        assert cur.fetchall() == [(member.pk,)]
        raise psycopg.Rollback(tx)


@postgres
@pytest.mark.parametrize("column", ["office_id", "user_id"])
def test_tenant_a_cannot_point_a_member_at_tenant_bs_office_or_login(committed_world, column):
    a, member = committed_world.tenant_a, committed_world.roster_a[1]  # in A's office, without a login
    b_login = user_create(
        email="unlinked@b.example", role="employee", tenant=committed_world.tenant_b, password=TEST_PASSWORD
    )
    foreign = {"office_id": committed_world.roster_b[0].office_id, "user_id": b_login.pk}[column]
    with _connect("app") as conn:
        with pytest.raises(errors.ForeignKeyViolation), conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(a.pk)])
            cur.execute(f"UPDATE accounts_member SET {column} = %s WHERE id = %s", [foreign, member.pk])
            assert cur.rowcount == 1
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with tenant_context(a):
        stored = Member.objects.get(pk=member.pk)
        assert (stored.office_id, stored.user_id) == (committed_world.office_a.pk, None)


@postgres
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
        own_canary = CheckupCorrection.objects.filter(record_id=own, institution="canary").exists()
        assert own_canary == (table == "checkupcorrection")
        assert Judgement.objects.filter(record_id=own, guidance_level="canary").exists() == (table == "judgement")
    with tenant_context(world.tenant_b):
        assert not CheckupCorrection.objects.filter(record_id=foreign, institution="canary").exists()
        assert not Judgement.objects.filter(record_id=foreign, guidance_level="canary").exists()


@postgres
def test_deleting_a_record_still_deletes_its_judgements(records):
    world, own, _foreign = records
    with tenant_context(world.tenant_a):
        checkup_judge(record=CheckupRecord.objects.get(pk=own))
        assert Judgement.objects.filter(record_id=own).exists()
        CheckupRecord.objects.get(pk=own).delete()
        assert not Judgement.objects.filter(record_id=own).exists()


def _member_update(conn, tenant_id: int, member_id: int, assignments: str, params: list) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant_id)])
        cur.execute(f"UPDATE accounts_member SET {assignments} WHERE id = %s", [*params, member_id])
        assert cur.rowcount == 1
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")


@postgres
def test_a_members_department_is_one_of_their_offices(committed_world):
    """The department key has the office in it: a department of another office of the same tenant is refused,
    as a department without an office is (on every database: a check constraint)."""
    a, member = committed_world.tenant_a, committed_world.roster_a[1]
    with tenant_context(a):
        osaka = Office.objects.create(name="大阪支社")
        osaka_sales = Department.objects.create(office=osaka, name="営業部")
    with _connect("app") as conn:
        with pytest.raises(errors.ForeignKeyViolation):
            _member_update(conn, a.pk, member.pk, "department_id = %s", [osaka_sales.pk])
        with pytest.raises(errors.CheckViolation):
            _member_update(conn, a.pk, member.pk, "office_id = NULL, department_id = %s", [osaka_sales.pk])
        _member_update(conn, a.pk, member.pk, "office_id = %s, department_id = %s", [osaka.pk, osaka_sales.pk])
    with tenant_context(a):
        assert Member.objects.get(pk=member.pk).department == osaka_sales


@postgres
@pytest.mark.parametrize("place", ["office", "none"])
def test_a_member_of_no_tenant_is_refused_with_or_without_an_office(committed_world, place):
    """Without an office the member's own key to the tenant checks it; with one, the office's key does."""
    office = committed_world.office_a.pk if place == "office" else None
    with _connect("owner") as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) + 1000 FROM tenants_tenant")
        nobody = cur.fetchone()[0]
        with pytest.raises(errors.ForeignKeyViolation), conn.transaction():
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", [str(nobody)])
            cur.execute(
                "INSERT INTO accounts_member (tenant_id, uid, office_id, relationship, is_active, name, name_index, "
                "email_index, created_at, updated_at) VALUES (%s, gen_random_uuid(), %s, 'self', true, "
                "'\\x00'::bytea, '', '', now(), now())",
                [nobody, office],
            )
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
