"""The ORM half of tenant isolation: fail closed without a tenant, never cross tenants."""

import pytest
from django.db import connection

from accounts.models import Member
from tenants.context import CrossTenantError, NoTenantError, current_tenant, database_tenant_id, tenant_context
from tenants.models import Department, Office


def test_query_without_tenant_raises_instead_of_returning_all_rows(world):
    with pytest.raises(NoTenantError):
        list(Member.objects.all())
    with pytest.raises(NoTenantError):
        Office.objects.count()


def test_each_tenant_sees_only_its_own_rows(world):
    with tenant_context(world.tenant_a):
        assert {m.employee_number for m in Member.objects.all()} == {"A0", "A1", "A2"}
    with tenant_context(world.tenant_b):
        assert Member.objects.count() == 5
        assert not Member.objects.filter(pk=world.roster_a[0].pk).exists()


def test_foreign_id_is_not_found(world):
    with tenant_context(world.tenant_b), pytest.raises(Member.DoesNotExist):
        Member.objects.get(pk=world.roster_a[0].pk)


def test_save_without_tenant_raises(world):
    with pytest.raises(NoTenantError):
        Office(name="どこか").save()


def test_saving_another_tenants_row_raises(world):
    with tenant_context(world.tenant_a):
        foreign = Member.objects.get(pk=world.roster_a[1].pk)
    foreign.name = "書き換え"
    with tenant_context(world.tenant_b):
        with pytest.raises(CrossTenantError):
            foreign.save()
    with tenant_context(world.tenant_a):
        assert Member.objects.get(pk=world.roster_a[1].pk).name != "書き換え"


def test_bulk_create_binds_current_tenant_and_refuses_foreign_rows(world):
    with tenant_context(world.tenant_a):
        created = Office.objects.bulk_create([Office(name="名古屋支店"), Office(name="福岡支店")])
        assert {o.tenant_id for o in created} == {world.tenant_a.pk}
        with pytest.raises(CrossTenantError):
            Office.objects.bulk_create([Office(name="偽装", tenant=world.tenant_b)])


def test_related_managers_are_scoped_too(world):
    with tenant_context(world.tenant_a):
        assert list(world.office_a.departments.all()) == [world.department_a]
    with pytest.raises(NoTenantError):
        list(Department.objects.filter(office=world.office_a))


def test_nested_contexts_restore_the_outer_tenant(world):
    with tenant_context(world.tenant_a):
        with tenant_context(world.tenant_b):
            assert current_tenant() == world.tenant_b
            assert Member.objects.count() == 5
        assert current_tenant() == world.tenant_a
        assert Member.objects.count() == 3
        if database_tenant_id():
            assert database_tenant_id() == str(world.tenant_a.pk)
    assert current_tenant() is None


def test_context_is_cleared_after_an_exception(world):
    with pytest.raises(ZeroDivisionError), tenant_context(world.tenant_a):
        1 / 0  # noqa: B018
    assert current_tenant() is None
    with pytest.raises(NoTenantError):
        Member.objects.count()


def test_all_tenants_manager_skips_only_the_orm_filter(world):
    # Operator code that really means "every tenant" says so. On PostgreSQL the application role still
    # sees the current tenant only: row-level security is the second wall.
    with tenant_context(world.tenant_a):
        visible = Member.all_tenants.count()
    assert visible == (3 if connection.vendor == "postgresql" else 8)
