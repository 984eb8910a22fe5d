from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction

from healthapp.crypto.keyring import tenant_keys_create
from tenants.context import tenant_context
from tenants.models import Department, Office, Tenant


@transaction.atomic
def tenant_create(
    *,
    kind: str,
    name: str,
    slug: str,
    contract_start: dt.date | None = None,
    contract_end: dt.date | None = None,
) -> Tenant:
    tenant = Tenant(kind=kind, name=name, slug=slug, contract_end=contract_end)
    if contract_start:
        tenant.contract_start = contract_start
    tenant.full_clean()
    tenant.save()
    tenant_keys_create(tenant=tenant)
    return tenant


def office_create(*, name: str, code: str = "") -> Office:
    office = Office(name=name, code=code)
    office.save()
    return office


def department_create(*, office: Office, name: str) -> Department:
    department = Department(office=office, name=name)
    department.save()
    return department


def tenant_ensure_structure(*, tenant: Tenant, offices: dict[str, list[str]]) -> dict[str, Office]:
    """Create the named offices and their departments if missing; returns offices by name."""
    if tenant.pk is None:
        raise ValidationError("tenant must be saved")
    result: dict[str, Office] = {}
    with tenant_context(tenant):
        for office_name, departments in offices.items():
            office, _ = Office.objects.get_or_create(name=office_name)
            for dept_name in departments:
                Department.objects.get_or_create(office=office, name=dept_name)
            result[office_name] = office
    return result
