"""Personal fields are ciphertext at rest, bound to their tenant, table, field and row."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection

from accounts.models import Member
from accounts.services import member_create
from healthapp.crypto.errors import DecryptionError
from healthapp.crypto.fields import EncryptedJSONField
from tenants.context import tenant_context

CANARY = {
    "employee_number": "E-77123",
    "name": "暗号 花子",
    "kana_name": "アンゴウ ハナコ",
    "birth_date": dt.date(1984, 7, 9),
    "sex": "female",
    # Long enough never to turn up by chance inside a random uid, index or ciphertext of the dump.
    "insurance_symbol": "47110815",
    "insurance_number": "90210377",
    "address": "東京都千代田区試験町1-2-3",
    "phone": "03-5555-0199",
}


@pytest.fixture
def secret_member(world):
    with tenant_context(world.tenant_a):
        return member_create(office=world.office_a, **CANARY)


def _raw(world, pk: int) -> dict:
    # Read as the database sees it (inside the tenant, so row-level security lets the row through).
    with tenant_context(world.tenant_a), connection.cursor() as cur:
        cur.execute("SELECT * FROM accounts_member WHERE id = %s", [pk])
        columns = [c[0] for c in cur.description]
        return dict(zip(columns, cur.fetchone(), strict=True))


def test_the_table_holds_ciphertext_only(world, secret_member):
    row = _raw(world, secret_member.pk)
    dump = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row.values())
    for value in CANARY.values():
        text = value.isoformat() if isinstance(value, dt.date) else value
        assert text.encode() not in dump, f"{text!r} stored in clear"
    assert bytes(row["name"])[0] == 1  # format version byte
    assert len(bytes(row["name"])) > len(CANARY["name"].encode()) + 16


def test_round_trip_after_reload(world, secret_member):
    with tenant_context(world.tenant_a):
        again = Member.objects.get(pk=secret_member.pk)
        for field, value in CANARY.items():
            assert getattr(again, field) == value


def test_same_value_encrypts_differently_each_time(world):
    with tenant_context(world.tenant_a):
        a = member_create(name="同姓 同名")
        b = member_create(name="同姓 同名")
    assert bytes(_raw(world, a.pk)["name"]) != bytes(_raw(world, b.pk)["name"])


def _copy_column(world, src_pk: int, src_col: str, dst_pk: int, dst_col: str, tenant=None) -> None:
    with tenant_context(world.tenant_a), connection.cursor() as cur:
        cur.execute(f"SELECT {src_col} FROM accounts_member WHERE id = %s", [src_pk])
        value = cur.fetchone()[0]
    with tenant_context(tenant or world.tenant_a), connection.cursor() as cur:
        cur.execute(f"UPDATE accounts_member SET {dst_col} = %s WHERE id = %s", [value, dst_pk])


def test_ciphertext_moved_to_another_field_does_not_decrypt(world, secret_member):
    _copy_column(world, secret_member.pk, "name", secret_member.pk, "address")
    with tenant_context(world.tenant_a):
        moved = Member.objects.get(pk=secret_member.pk)
        assert moved.name == CANARY["name"]
        with pytest.raises(DecryptionError):
            _ = moved.address


def test_ciphertext_moved_to_another_row_does_not_decrypt(world, secret_member):
    other = world.roster_a[1]
    _copy_column(world, secret_member.pk, "name", other.pk, "name")
    with tenant_context(world.tenant_a), pytest.raises(DecryptionError):
        _ = Member.objects.get(pk=other.pk).name


def test_ciphertext_moved_to_another_tenant_does_not_decrypt(world, secret_member):
    victim = world.roster_b[1]
    _copy_column(world, secret_member.pk, "name", victim.pk, "name", tenant=world.tenant_b)
    with tenant_context(world.tenant_b), pytest.raises(DecryptionError):
        _ = Member.objects.get(pk=victim.pk).name


def test_tampered_ciphertext_raises_a_clear_error_not_garbage(world, secret_member):
    with tenant_context(world.tenant_a), connection.cursor() as cur:
        cur.execute("SELECT name FROM accounts_member WHERE id = %s", [secret_member.pk])
        blob = bytearray(bytes(cur.fetchone()[0]))
        blob[-1] ^= 0x01
        cur.execute("UPDATE accounts_member SET name = %s WHERE id = %s", [bytes(blob), secret_member.pk])
        member = Member.objects.get(pk=secret_member.pk)
        with pytest.raises(DecryptionError, match="does not authenticate") as exc:
            _ = member.name
    assert CANARY["name"] not in str(exc.value)


def test_filtering_on_an_encrypted_column_is_refused(world):
    with tenant_context(world.tenant_a), pytest.raises(FieldError):
        Member.objects.filter(name="甲野 0").count()


def test_dumpdata_shows_ciphertext_only_and_loaddata_restores_it(committed_world, tmp_path):
    """A backup and restore as an operator does it (restores run as the owner role)."""
    from healthapp.db import owner_role

    world = committed_world
    with tenant_context(world.tenant_a):
        secret_member = member_create(office=world.office_a, **CANARY)
    out = StringIO()
    with tenant_context(world.tenant_a):
        call_command("dumpdata", "accounts.Member", stdout=out)
    dump = out.getvalue()
    assert "sealed:" in dump
    for value in CANARY.values():
        assert (value.isoformat() if isinstance(value, dt.date) else value) not in dump
    entry = next(e for e in json.loads(dump) if e["pk"] == secret_member.pk)
    path = tmp_path / "backup.json"
    path.write_text(json.dumps([entry]))
    with tenant_context(world.tenant_a):
        Member.objects.filter(pk=secret_member.pk).delete()
    with owner_role():
        call_command("loaddata", str(path), verbosity=0)
    with tenant_context(world.tenant_a):
        assert Member.objects.get(pk=secret_member.pk).address == CANARY["address"]


def test_repr_and_str_never_show_personal_data(world, secret_member):
    with tenant_context(world.tenant_a):
        loaded = Member.objects.get(pk=secret_member.pk)
        assert CANARY["name"] not in repr(loaded) + str(loaded)
        assert str(loaded.__dict__["name"]) == "<encrypted>"


def test_json_variant_round_trips_and_is_bound_to_its_field(world, secret_member):
    field = EncryptedJSONField()
    field.set_attributes_from_name("questionnaire")
    field.model = Member
    answers = {"喫煙": True, "服薬": ["血圧"], "空腹時": 10}
    with tenant_context(world.tenant_a):
        sealed = field.encrypt_for(secret_member, answers)
        assert field.decrypt_for(secret_member, sealed) == answers
        other = EncryptedJSONField()
        other.set_attributes_from_name("notes")
        other.model = Member
        with pytest.raises(DecryptionError):
            other.decrypt_for(secret_member, sealed)


# --- Whole rows: the path of every save, the roster import and readers of whole rows ---------------------


def test_whole_row_open_reads_what_a_save_sealed_and_saving_again_rewrites_nothing(world, secret_member):
    from healthapp.crypto.fields import open_instance

    before = _raw(world, secret_member.pk)
    with tenant_context(world.tenant_a):
        member = Member.objects.get(pk=secret_member.pk)
        open_instance(member)
        assert {field: getattr(member, field) for field in CANARY} == CANARY
        member.save()
    after = _raw(world, secret_member.pk)
    assert all(bytes(before[f]) == bytes(after[f]) for f in CANARY)  # read, not changed: same ciphertext


def test_whole_row_open_refuses_a_value_moved_from_another_row(world, secret_member):
    from healthapp.crypto.fields import open_instance

    other = world.roster_a[1]
    _copy_column(world, secret_member.pk, "phone", other.pk, "phone")
    with tenant_context(world.tenant_a):
        member = Member.objects.get(pk=other.pk)
        with pytest.raises(DecryptionError, match="does not authenticate") as exc:
            open_instance(member)
    assert CANARY["phone"] not in str(exc.value)


def test_a_save_seals_the_new_values_of_a_row_in_one_pass_each_with_its_own_nonce(world, monkeypatch):
    from healthapp.crypto import fields

    calls = []
    original = fields.seal_row
    monkeypatch.setattr(fields, "seal_row", lambda *a: calls.append(len(a[2])) or original(*a))
    with tenant_context(world.tenant_a):
        member = member_create(**{**CANARY, "employee_number": "E-99"})
    assert calls == [len(CANARY)]  # one call for the row's values
    row = _raw(world, member.pk)
    assert row["email"] is None  # empty: stored as NULL, not as a sealed "" (its length would tell anyway)
    with tenant_context(world.tenant_a):
        assert Member.objects.get(pk=member.pk).email == ""
    nonces = {bytes(row[f])[5:17] for f in CANARY}
    assert len(nonces) == len(CANARY)


def test_row_sealing_under_a_rotated_key_stays_readable_with_mixed_versions(world, secret_member):
    from healthapp.crypto import keyring
    from healthapp.crypto.fields import open_instance
    from healthapp.crypto.primitives import key_version_of

    keyring.data_key_rotate(tenant=world.tenant_a)
    with tenant_context(world.tenant_a):
        member = Member.objects.get(pk=secret_member.pk)
        member.phone = "03-1111-2222"  # only this value is sealed under the new version
        member.save()
        row = _raw(world, member.pk)
        assert key_version_of(bytes(row["phone"])) == key_version_of(bytes(row["name"])) + 1
        again = Member.objects.get(pk=member.pk)
        open_instance(again)
        assert again.phone == "03-1111-2222" and again.name == CANARY["name"]


def test_a_value_read_from_one_row_and_saved_into_another_opens_there(world, secret_member):
    """A decrypted value remembers its ciphertext; copied into another row or field it is sealed anew
    (the remembered ciphertext is bound to its own row and field and would not open there)."""
    other = world.roster_a[1]
    with tenant_context(world.tenant_a):
        source = Member.objects.get(pk=secret_member.pk)
        target = Member.objects.get(pk=other.pk)
        target.name = source.name
        target.save()
        source.address = source.name
        source.save(update_fields=["address"])
        assert Member.objects.get(pk=other.pk).name == CANARY["name"]
        assert Member.objects.get(pk=secret_member.pk).address == CANARY["name"]


def test_every_model_with_sealed_columns_binds_them_to_the_row(db):
    """Without a row uid in the associated data, a ciphertext copied between two rows of one tenant and
    field opens in either: a name, an opinion or a file name could be moved onto someone else's row."""
    from healthapp.crypto.rotation import encrypted_models

    unbound = [m._meta.label for m, _names in encrypted_models() if "uid" not in {f.name for f in m._meta.fields}]
    assert unbound == []


def test_a_job_file_name_moved_to_another_job_does_not_open(world):
    from healthapp.models import Job

    with tenant_context(world.tenant_a):
        first, second = (
            Job.objects.create(kind=Job.Kind.ROSTER, file=f"jobs/{n}.sealed", file_name=f"山田{n}.csv", file_sha256="0")
            for n in (1, 2)
        )
        with connection.cursor() as cur:
            cur.execute("SELECT file_name FROM healthapp_job WHERE id = %s", [first.pk])
            cur.execute("UPDATE healthapp_job SET file_name = %s WHERE id = %s", [cur.fetchone()[0], second.pk])
        assert Job.objects.get(pk=first.pk).file_name == "山田1.csv"
        with pytest.raises(DecryptionError):
            _ = Job.objects.get(pk=second.pk).file_name
