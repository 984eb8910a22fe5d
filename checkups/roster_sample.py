"""A demo MHLW ZIP whose people are a tenant's roster entries (their 記号/番号/sex/birth date), so the
import matches them — the fictional results come from ``checkups.mhlw_sample.sample_person``.

    .venv/bin/python -m checkups.roster_sample --tenant demo-corp --people 20 --out var/demo_mhlw.zip

Operator/demo use only: it reads decrypted card data inside the tenant and writes it into the file.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path


def roster_bundle(*, people: int = 20, seed: int = 8, exam_year: int = 2025) -> bytes:
    """The bundle for the current tenant's first ``people`` roster entries that carry card data."""
    from accounts.models import Member
    from checkups.mhlw_sample import build_document, build_zip, sample_person

    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    documents = []
    for member in Member.objects.order_by("pk"):
        if len(documents) >= people:
            break
        if not (member.insurance_symbol and member.insurance_number and member.sex and member.birth_date):
            continue
        fields = sample_person(rng, len(documents))
        _continue_body_measures(fields["items"], member, rng)  # type: ignore[arg-type]
        fields |= {
            "symbol": member.insurance_symbol, "number": member.insurance_number, "sex": member.sex,
            "birth_date": member.birth_date, "exam_date": date(exam_year, 9, 1 + len(documents) % 28),
            "branch": member.insurance_branch or None,
        }  # fmt: skip
        documents.append(build_document(**fields))
    return build_zip(documents)


def _continue_body_measures(items: dict[str, object], member, rng: random.Random) -> None:
    """A person already on file keeps their height, and their weight moves by a kilogram or two, so that
    the physician's 前回 column reads like the same person's; the laboratory values stay fictional."""
    from checkups.mhlw_sample import bmi_of
    from checkups.models import CheckupRecord

    last = CheckupRecord.objects.filter(member=member).order_by("-exam_date").first()
    before = last.result_values() if last is not None else {}
    if "height" not in before or "weight" not in before:
        return
    tenth = Decimal("0.1")
    height = before["height"].quantize(tenth)
    weight = (before["weight"] + Decimal(rng.uniform(-2, 2))).quantize(tenth)
    items |= {"height": height, "weight": weight, "bmi": bmi_of(weight, height)}
    if "waist" in before:
        items["waist"] = (before["waist"] + Decimal(rng.uniform(-2, 2))).quantize(tenth)


def main(argv: Sequence[str] | None = None) -> None:
    import django

    django.setup()
    from tenants.context import tenant_context
    from tenants.models import Tenant

    parser = argparse.ArgumentParser(description="Write an MHLW ZIP for a tenant's roster (demo data).")
    parser.add_argument("--tenant", default="demo-corp")
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("var/demo_mhlw.zip"))
    args = parser.parse_args(argv)
    with tenant_context(Tenant.objects.get(slug=args.tenant)):
        data = roster_bundle(people=args.people)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthapp.settings")
    main()
