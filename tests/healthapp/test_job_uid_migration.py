"""Migration healthapp 0007: every job gets a uid and its sealed file name is sealed again under it (a name
copied onto another job no longer opens there); reversed, the names open without the uid again."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.checkups.test_results_migration import ON_SQLITE, _migrate

BEFORE = [("healthapp", "0006_job_number")]
AFTER = [("healthapp", "0007_job_uid")]


def _file_names() -> list:
    with connection.cursor() as cursor:
        cursor.execute("SELECT file_name FROM healthapp_job ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "sqlite", reason=ON_SQLITE)
def test_stored_file_names_are_sealed_again_under_each_jobs_new_uid_and_back(transactional_db):
    from django.db.migrations.executor import MigrationExecutor

    from healthapp.crypto.errors import DecryptionError
    from healthapp.crypto.fields import encrypted_fields, open_row, seal_row
    from healthapp.models import Job
    from tenants.context import tenant_context
    from tenants.services import tenant_create

    field = encrypted_fields(Job)[0]

    # The columns the table has at 0007 (later migrations add others the current model reads).
    def at_0007():
        return Job.objects.only("pk", "tenant", "uid", "file_name")

    _migrate(BEFORE)
    try:
        # Two tenants, the first one's jobs last: each value is opened under its own tenant's key. A third one
        # was crypto-shredded: its name opens nowhere and must not stop the migration.
        tenant = tenant_create(kind="company", name="移行テスト", slug="job-mig")
        other = tenant_create(kind="company", name="移行テスト2", slug="job-mig-2")
        shredded = tenant_create(kind="company", name="移行テスト3", slug="job-mig-3")
        for owner, n, name in ((other, 1, "他社.csv"), (shredded, 1, "消去済み.csv"), (tenant, 1, "山田太郎の健診.xml"),
                               (tenant, 2, None)):  # fmt: skip
            with tenant_context(owner), connection.cursor() as cursor:
                sealed = seal_row(owner.pk, b"", [(field, name)])[0] if name else None
                cursor.execute(
                    "INSERT INTO healthapp_job (tenant_id, kind, number, state, file, file_name, file_size, "
                    "file_sha256, options, plan, rows_total, rows_done, next_chunk, counts, errors, error_code, "
                    "created_at, updated_at) VALUES (%s, 'checkup', %s, 'done', 'f', %s, 1, '0', '{}', '{}', 0, 0, "
                    "0, '{}', '[]', '', '2026-12-01', '2026-12-01')",
                    [owner.pk, n, sealed],
                )
        from healthapp.crypto.keyring import tenant_keys_destroy

        tenant_keys_destroy(tenant=shredded)
        before = _file_names()[2]
        _migrate(AFTER)
        with tenant_context(shredded):
            assert at_0007().filter(tenant=shredded).get().uid is not None
        with tenant_context(other):
            assert [str(job.file_name) for job in at_0007().filter(tenant=other)] == ["他社.csv"]
        with tenant_context(tenant):
            jobs = list(at_0007().filter(tenant=tenant).order_by("pk"))
            assert [str(job.file_name) for job in jobs] == ["山田太郎の健診.xml", ""]
            assert jobs[0].uid != jobs[1].uid
            sealed = _file_names()[2]
            assert sealed != before
            with pytest.raises(DecryptionError):
                open_row(tenant.pk, b"", [(field, bytes(sealed))])  # bound to the uid now
        _migrate(BEFORE)
        with tenant_context(tenant):
            assert open_row(tenant.pk, b"", [(field, bytes(_file_names()[2]))]) == ["山田太郎の健診.xml"]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
