"""Key management: wrapping, master-key rotation, data-key rotation, crypto-shredding, KMS."""

from __future__ import annotations

import base64
import datetime as dt
import os
import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Member
from accounts.services import member_create
from healthapp.crypto import kek, keyring
from healthapp.crypto.errors import DecryptionError, KeyDestroyedError, KeyUnavailableError
from healthapp.crypto.primitives import key_version_of
from healthapp.crypto.rotation import rows_to_reencrypt, tenant_keys_rotate
from tenants.context import tenant_context
from tenants.models import TenantKey
from tests.audit.conftest import events_of


@pytest.fixture
def fresh_keys():
    """Drop every cached key before and after, as a new process would."""
    kek.reset_master_keys()
    keyring.forget_cached_keys()
    yield
    kek.reset_master_keys()
    keyring.forget_cached_keys()


def _names(tenant) -> dict[int, str]:
    with tenant_context(tenant):
        return {m.pk: m.name for m in Member.objects.order_by("pk")}


def _stored_versions(tenant) -> set[int]:
    with tenant_context(tenant), connection.cursor() as cur:
        cur.execute("SELECT name FROM accounts_member WHERE tenant_id = %s", [tenant.pk])
        return {key_version_of(bytes(row[0])) for row in cur.fetchall()}


def test_a_new_tenant_gets_wrapped_keys(world):
    with tenant_context(world.tenant_a):
        keys = {(k.purpose, k.version, k.state) for k in TenantKey.objects.all()}
        stored = TenantKey.objects.get(purpose="data")
    assert keys == {("data", 1, "active"), ("index", 1, "active")}
    current, _ = kek.master_keys()
    assert stored.kek_id == current.kek_id
    assert len(bytes(stored.wrapped_key)) == 12 + 32 + 16  # nonce + key + tag: wrapped, not raw


def test_a_wrong_master_key_is_refused(world, fresh_keys, monkeypatch):
    names = _names(world.tenant_a)
    monkeypatch.setenv("HEALTHAPP_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    kek.reset_master_keys()
    keyring.forget_cached_keys()
    with tenant_context(world.tenant_a):
        member = Member.objects.get(pk=next(iter(names)))
        with pytest.raises(KeyUnavailableError, match="not configured"):
            _ = member.name
        # Even a key row claiming to be wrapped by the new master key does not unwrap.
        current, _ = kek.master_keys()
        TenantKey.objects.filter(purpose="data").update(kek_id=current.kek_id)
        keyring.forget_cached_keys()
        with pytest.raises(DecryptionError):
            _ = Member.objects.get(pk=member.pk).name


def test_master_key_rotation_rewraps_keys_without_touching_rows(world, fresh_keys, monkeypatch, tmp_path):
    before_names = _names(world.tenant_a) | _names(world.tenant_b)
    with tenant_context(world.tenant_a), connection.cursor() as cur:
        cur.execute("SELECT id, name FROM accounts_member ORDER BY id")
        rows_before = [(pk, bytes(v)) for pk, v in cur.fetchall()]
    old_kek, _ = kek.master_keys()
    old_raw = base64.b64encode(old_kek.key).decode()
    monkeypatch.setenv("HEALTHAPP_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("HEALTHAPP_PREVIOUS_MASTER_KEYS", old_raw)
    kek.reset_master_keys()
    out = StringIO()
    call_command("rotate_keys", "--kek", stdout=out)
    assert "Re-wrapped 4 keys" in out.getvalue()  # data + index keys of both tenants
    (rewrapped,) = events_of(None, action="crypto.master_key_rewrapped")  # the operator's act, on record
    assert rewrapped.details["keys"] == 4 and rewrapped.details["kek"].startswith("local:")
    assert old_raw not in str(rewrapped.details)
    # The old master key is gone: only the new one is needed from now on.
    monkeypatch.delenv("HEALTHAPP_PREVIOUS_MASTER_KEYS")
    kek.reset_master_keys()
    keyring.forget_cached_keys()
    assert _names(world.tenant_a) | _names(world.tenant_b) == before_names
    with tenant_context(world.tenant_a), connection.cursor() as cur:
        cur.execute("SELECT id, name FROM accounts_member ORDER BY id")
        assert [(pk, bytes(v)) for pk, v in cur.fetchall()] == rows_before


def test_new_master_key_on_the_embedded_default(db, fresh_keys, settings, tmp_path):
    from tenants.services import tenant_create

    settings.VAR_DIR = tmp_path
    kek.reset_master_keys()
    tenant = tenant_create(kind="company", name="鍵社", slug="keys")
    with tenant_context(tenant):
        member = member_create(name="鍵 更新")
    first = (tmp_path / "keys" / "master.key").read_text()
    call_command("rotate_keys", "--kek", "--new-master-key", stdout=StringIO())
    assert (tmp_path / "keys" / "master.key").read_text() != first
    assert list((tmp_path / "keys").glob("master-*.previous"))
    keyring.forget_cached_keys()
    with tenant_context(tenant):
        assert Member.objects.get(pk=member.pk).name == "鍵 更新"


def test_tenant_rotation_reencrypts_every_row_and_keeps_them_readable(world, fresh_keys):
    before = _names(world.tenant_a)
    progress = []
    result = tenant_keys_rotate(tenant=world.tenant_a, batch_size=2, progress=lambda d, t: progress.append((d, t)))
    assert result["new_version"] == 2 and result["rewritten"] == 3
    assert progress[-1] == (3, 3)
    assert _stored_versions(world.tenant_a) == {2}
    assert _names(world.tenant_a) == before
    assert _stored_versions(world.tenant_b) == {1}  # other tenants untouched
    with tenant_context(world.tenant_a):
        states = dict(TenantKey.objects.filter(purpose="data").values_list("version", "state"))
    assert states == {1: "retired", 2: "active"}
    (rotated,) = events_of(world.tenant_a, action="tenant.keys_rotated")
    assert rotated.details == {"new_version": 2, "started_new": 1, "rows": 3, "rewritten": 3, "files": 0}


def test_interrupted_rotation_resumes_and_old_versions_stay_readable(world, fresh_keys):
    keyring.data_key_rotate(tenant=world.tenant_a)  # as if the command died right after this step
    with tenant_context(world.tenant_a):
        member_create(name="途中 追加")  # written under v2 while v1 rows remain
    assert _stored_versions(world.tenant_a) == {1, 2}
    assert rows_to_reencrypt(tenant=world.tenant_a) == 3
    assert "途中 追加" in _names(world.tenant_a).values()  # both versions readable meanwhile
    out = StringIO()
    call_command("rotate_keys", "--tenant", "tenant-a", stdout=out, stderr=StringIO())
    assert "Resumed rotation to data key v2" in out.getvalue()
    assert _stored_versions(world.tenant_a) == {2}
    assert rows_to_reencrypt(tenant=world.tenant_a) == 0


def test_blind_indexes_survive_data_key_rotation(world, fresh_keys):
    from accounts.selectors import member_get_by_employee_number

    tenant_keys_rotate(tenant=world.tenant_a)
    with tenant_context(world.tenant_a):
        assert member_get_by_employee_number("A1").pk == world.roster_a[1].pk


def test_crypto_shredding_makes_every_value_unreadable_even_from_a_backup(committed_world, fresh_keys):
    """Backup, shred, restore the backup as the operator would (owner role): nothing can be read."""
    from healthapp.db import owner_role

    world = committed_world
    out = StringIO()
    with tenant_context(world.tenant_a):
        call_command("dumpdata", "accounts.Member", stdout=out)  # a backup taken before
    backup = out.getvalue()
    destroyed = keyring.tenant_keys_destroy(tenant=world.tenant_a)
    assert destroyed == 2
    (shredded,) = events_of(None, action="tenant.keys_destroyed")  # kept where the tenant's own chain is not
    assert (shredded.target_id, shredded.details) == (str(world.tenant_a.pk), {"keys": 2})
    with tenant_context(world.tenant_a):
        assert TenantKey.objects.filter(wrapped_key__isnull=False).count() == 0
        member = Member.objects.get(pk=world.roster_a[0].pk)
        with pytest.raises(KeyDestroyedError):
            _ = member.name
        with pytest.raises(KeyDestroyedError):
            member_create(name="新規")
        # Restoring the old rows brings back ciphertext only: nothing can open it any more.
        Member.objects.filter(user__isnull=True).delete()
    import json
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        fh.write(json.dumps([e for e in json.loads(backup) if e["fields"]["tenant"] == world.tenant_a.pk]))
    with owner_role():
        call_command("loaddata", fh.name, verbosity=0)
    with tenant_context(world.tenant_a):
        assert Member.objects.count() == 3
        with pytest.raises(KeyDestroyedError):
            _ = Member.objects.first().name
    # Tenant B is unaffected.
    assert len(_names(world.tenant_b)) == 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kms_backend_wraps_through_a_kms_protocol_server(db, fresh_keys, monkeypatch):
    """AWS KMS through boto3, against moto's KMS in server mode over HTTP."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tenants.services import tenant_create

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "ap-northeast-1",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        key_id = boto3.client("kms", endpoint_url=endpoint).create_key()["KeyMetadata"]["KeyId"]
        monkeypatch.setenv("HEALTHAPP_KMS_KEY_ID", key_id)
        monkeypatch.setenv("HEALTHAPP_KMS_ENDPOINT_URL", endpoint)
        kek.reset_master_keys()
        tenant = tenant_create(kind="company", name="KMS社", slug="kms")
        with tenant_context(tenant):
            member = member_create(name="鍵管理 太郎", birth_date=dt.date(1990, 1, 2))
            assert TenantKey.objects.get(purpose="data").kek_id == f"kms:{key_id}"
        keyring.forget_cached_keys()
        with tenant_context(tenant):
            again = Member.objects.get(pk=member.pk)
            assert (again.name, again.birth_date) == ("鍵管理 太郎", dt.date(1990, 1, 2))
    finally:
        server.stop()


def test_the_master_keys_repr_does_not_show_the_key():
    """A DEBUG error page lists local variables by repr(), and so does a traceback in a debugger."""
    secret = os.urandom(32)
    shown = repr(kek.LocalKek(secret))
    assert secret.hex() not in shown and repr(secret) not in shown and "LocalKek" in shown


def test_each_index_key_version_is_its_own_key_even_when_cached(world, fresh_keys):
    """The cache of derived index keys is per version: asking for version 2 after version 1 (as a future
    index-secret rotation will, to read old and new entries side by side) must not return version 1."""
    from tenants.models import TenantKey

    with tenant_context(world.tenant_a):  # row-level security shows the key rows inside the tenant only
        TenantKey.objects.filter(purpose=TenantKey.Purpose.INDEX).update(state=TenantKey.State.RETIRED)
        keyring._new_key(world.tenant_a, TenantKey.Purpose.INDEX, version=2)
        first = keyring.index_key(world.tenant_a.pk, "employee_number", version=1)
        second = keyring.index_key(world.tenant_a.pk, "employee_number", version=2)
        assert first != second
        keyring.forget_cached_keys()
        assert keyring.index_key(world.tenant_a.pk, "employee_number", version=2) == second
