"""Benchmark: our encrypted-field layer and blind indexes against the bare primitives, same data, same run.

    .venv/bin/python bench/crypto.py [--members 100000]

Prints seconds for each side and the ratio (ours / bare). Target: at most 2x. The bare side does
exactly the cryptographic work (AES-256-GCM with a fresh nonce and the same AAD, HMAC-SHA-256 of the
already-normalised value); ours adds key lookup, the sealed-value header, AAD building, type encoding
and Unicode normalisation. Ours runs the row functions every writer and whole-row reader goes through
(``seal_row``: model saves via ``pre_save``, the roster import; ``open_row``: ``open_instance``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-crypto-")
    os.environ.update(HEALTHAPP_VAR_DIR=tmp, DJANGO_SETTINGS_MODULE="healthapp.settings")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from accounts.models import Member
    from healthapp.crypto import keyring
    from healthapp.crypto.blind_index import blind_index, insurance_card_index, normalise
    from healthapp.crypto.fields import encrypted_fields, open_row, seal_row
    from tenants.context import tenant_context
    from tenants.services import tenant_create

    tenant = tenant_create(kind="company", name="bench", slug="bench")
    fields = {f.name: f for f in encrypted_fields(Member)}
    people = []
    for i in range(args.members):
        member = Member(tenant=tenant)
        member.uid = uuid.uuid4()
        people.append(
            (
                member,
                {
                    "employee_number": f"E{i:06d}",
                    "name": f"山田 太郎{i}",
                    "kana_name": f"ヤマダ タロウ{i}",
                    "birth_date": dt.date(1960, 1, 1) + dt.timedelta(days=i % 15000),
                    "sex": "male",
                    "insurance_symbol": "1234",
                    "insurance_number": str(i),
                    "address": "東京都千代田区丸の内1-1-1",
                    "phone": "03-0000-0000",
                },
            )
        )

    with tenant_context(tenant):
        version = keyring.active_version(tenant.pk)
        key = keyring.key_bytes(tenant.pk, "data", version)
        index_secret = keyring.key_bytes(tenant.pk, "index", 1)
        bare_aead = AESGCM(key)
        index_key = hashlib.sha256(index_secret).digest()
        # Inputs for the bare side prepared outside the timing: encoded values, AADs, normalised strings.
        prepared = [
            [
                (
                    (v.isoformat() if isinstance(v, dt.date) else v).encode(),
                    b"%d" % tenant.pk + fields[name]._aad_suffix + m.uid.bytes,  # tenant|model|field|uid
                )
                for name, v in values.items()
            ]
            for m, values in people
        ]
        normalised = [
            (normalise(v["employee_number"]), normalise(v["name"], kana=True), normalise(v["insurance_number"]))
            for _, v in people
        ]

        start = time.perf_counter()
        for row in prepared:
            for plain, aad in row:
                nonce = os.urandom(12)
                sealed = bare_aead.encrypt(nonce, plain, aad)
                bare_aead.decrypt(nonce, sealed, aad)
        bare_fields = time.perf_counter() - start
        start = time.perf_counter()
        for e, n, ins in normalised:
            for text in (e, n, ins):
                hmac.digest(index_key, text.encode(), "sha256")
        bare_index = time.perf_counter() - start

        # The same inputs for our side: (field, value) pairs of a row, as a save (pre_save → seal_row),
        # an import (seal_row) and a reader of whole rows (open_instance → open_row) hand them over.
        ours_input = [(member, [(fields[n], v) for n, v in values.items()], values) for member, values in people]
        tid = tenant.pk
        start = time.perf_counter()
        for member, pairs, _ in ours_input:
            uid = member.uid.bytes
            sealed = seal_row(tid, uid, pairs)
            open_row(tid, uid, [(field, value) for (field, _), value in zip(pairs, sealed, strict=True)])
        ours_fields = time.perf_counter() - start
        start = time.perf_counter()
        for _, _, values in ours_input:
            blind_index(tid, "employee-number", values["employee_number"])
            blind_index(tid, "name", values["name"], kana=True)
            birth = values["birth_date"]
            insurance_card_index(
                tid, symbol=values["insurance_symbol"], number=values["insurance_number"],
                relationship="self", sex=values["sex"], birth_year_month=f"{birth.year:04d}-{birth.month:02d}",
            )  # fmt: skip
        ours_index = time.perf_counter() - start

        for member, pairs, _ in ours_input[:1000]:  # the timed work was real: values come back intact
            uid = member.uid.bytes
            sealed = seal_row(tid, uid, pairs)
            opened = open_row(tid, uid, [(field, value) for (field, _), value in zip(pairs, sealed, strict=True)])
            assert opened == [value for _, value in pairs], "round trip failed"

    bare, ours = bare_fields + bare_index, ours_fields + ours_index
    ratio = ours / bare
    print(f"members: {args.members:,} ({len(fields)} encrypted fields each, 3 blind indexes)")
    print(f"{'':22}{'bare':>9}{'ours':>9}{'ratio':>8}")
    print(f"{'encrypt+decrypt':22}{bare_fields:8.2f}s{ours_fields:8.2f}s{ours_fields / bare_fields:7.2f}x")
    print(f"{'blind indexes':22}{bare_index:8.2f}s{ours_index:8.2f}s{ours_index / bare_index:7.2f}x")
    verdict = "OK" if ratio <= 2 else "OVER TARGET"
    print(f"{'total':22}{bare:8.2f}s{ours:8.2f}s{ratio:7.2f}x  (target <= 2.00x) {verdict}")


if __name__ == "__main__":
    main()
