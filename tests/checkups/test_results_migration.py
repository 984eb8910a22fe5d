"""Migration 0010: the result rows of every stored record move into the record, exactly, and back."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("checkups", "0009_checkup_correction")]
AFTER = [("checkups", "0010_results_in_record")]


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


ON_SQLITE = "the schema is rewound on SQLite only (on PostgreSQL the owner role migrates, under row-level security)"


@pytest.mark.skipif(connection.vendor != "sqlite", reason=ON_SQLITE)
def test_result_rows_move_into_their_record_and_back(transactional_db):
    _migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO tenants_tenant (kind, name, slug, contract_start, status, created_at, "
                "insurer_number) VALUES ('company', 't', 't', '2025-04-01', 'active', '2025-04-01', '')"
            )
            tenant = cursor.lastrowid
            cursor.execute("INSERT INTO accounts_member (tenant_id, uid, relationship, is_active, name, name_index, "
                           "email_index, created_at, updated_at) VALUES (%s, 'u1', 'self', 1, x'00', 'n', 'e', "
                           "'2025-04-01', '2025-04-01')", [tenant])  # fmt: skip
            member = cursor.lastrowid
            cursor.execute(
                "INSERT INTO checkups_checkuprecord (tenant_id, member_id, exam_date, fiscal_year, program, "
                "institution, questionnaire, source, source_sha256, created_at) VALUES (%s, %s, "
                "'2025-06-02', 2025, 'regular', '', '{}', 'csv', '', '2025-06-02')",
                [tenant, member],
            )
            record = cursor.lastrowid
            rows = [("systolic", "128", "mm[Hg]", "", "mmHg", "9A755000000000001", "H"),
                    ("hba1c", "5.6", "%", "", "", "", ""), ("urine_sugar", None, "", "−", "", "", "")]  # fmt: skip
            for row in rows:
                cursor.execute("INSERT INTO checkups_checkupresult (tenant_id, record_id, item, value, unit, text, "
                               "unit_as_given, code, interpretation) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                               [tenant, record, *row])  # fmt: skip
        _migrate(AFTER)
        with connection.cursor() as cursor:
            cursor.execute("SELECT results FROM checkups_checkuprecord WHERE id = %s", [record])
            results = json.loads(cursor.fetchone()[0])
        assert results == {
            "systolic": {"value": "128.000", "unit": "mm[Hg]", "unit_as_given": "mmHg", "code": "9A755000000000001",
                         "interpretation": "H"},
            "hba1c": {"value": "5.600", "unit": "%"},
            "urine_sugar": {"value": None, "unit": "", "text": "−"},
        }  # fmt: skip
        _migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute("SELECT item, value, unit, text, unit_as_given, code, interpretation "
                           "FROM checkups_checkupresult WHERE record_id = %s ORDER BY item", [record])  # fmt: skip
            back = {row[0]: row[1:] for row in cursor.fetchall()}
        assert back["systolic"][1:] == ("mm[Hg]", "", "mmHg", "9A755000000000001", "H")
        assert float(back["systolic"][0]) == 128 and float(back["hba1c"][0]) == 5.6
        assert back["urine_sugar"] == (None, "", "−", "", "", "")
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
