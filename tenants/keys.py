"""Same-tenant foreign keys: ``(tenant_id, <column>) → target (tenant_id, id)`` on PostgreSQL.

Every relation from a tenant-scoped model to another model with a tenant (tenant-scoped, or the logins
of ``accounts.User``) is a ``SameTenantForeignKey`` (or ``SameTenantOneToOneField``); after every
``migrate`` (post_migrate, idempotently, by the owner role, like tenants.rls) its table gets the
composite key and the target a unique ``(tenant_id, id)`` index for it to refer to. Django's model
state does not know these (it has no composite foreign keys), as it does not know the policies.
``violations`` lists what is missing; tests/tenants/test_same_tenant_keys.py runs it on the catalogue.
"""

from __future__ import annotations

import hashlib

import psycopg
from django.apps import AppConfig
from django.db import IntegrityError, connections, models
from psycopg import sql

from tenants.models import SameTenantForeignKey, SameTenantOneToOneField, Tenant, TenantScopedModel
from tenants.rls import tenant_models

SAME_TENANT = (SameTenantForeignKey, SameTenantOneToOneField)


def _has_tenant(model: type[models.Model]) -> bool:
    """Tenant-scoped, or a global table whose rows still belong to a tenant (the logins)."""
    if issubclass(model, TenantScopedModel):
        return True
    return any(f.name == "tenant" and f.is_relation and f.related_model is Tenant for f in model._meta.concrete_fields)


def tenant_relations(app_config: AppConfig | None = None) -> list[tuple[type[models.Model], models.ForeignKey]]:
    """(model, field) of every foreign key from a tenant-scoped model to another model with a tenant
    (the tenant field aside)."""
    return [
        (model, field)
        for model in tenant_models(app_config)
        for field in model._meta.concrete_fields
        if (field.many_to_one or field.one_to_one) and field.name != "tenant" and _has_tenant(field.related_model)
    ]


def _name(*parts: str) -> str:
    name = "_".join(parts)
    if len(name) > 63:  # PostgreSQL's identifier limit: keep a recognisable start, make it unique
        name = name[:54] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return name


def constraint_name(table: str, column: str) -> str:
    return _name(table, column, "same_tenant")


def target_index_name(table: str) -> str:
    return _name(table, "tenant_id_id", "key")


def definition(field: models.ForeignKey) -> str:
    """The constraint as pg_get_constraintdef prints it."""
    target = field.related_model._meta
    return (
        f"FOREIGN KEY (tenant_id, {field.column}) REFERENCES {target.db_table}(tenant_id, {target.pk.column}) "
        "DEFERRABLE INITIALLY DEFERRED"
    )


def _statements(model: type[models.Model], field: models.ForeignKey) -> tuple[sql.Composed, sql.Composed]:
    table, target = model._meta.db_table, field.related_model._meta
    index = sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (tenant_id, {})").format(
        sql.Identifier(target_index_name(target.db_table)),
        sql.Identifier(target.db_table),
        sql.Identifier(target.pk.column),
    )
    key = sql.SQL(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (tenant_id, {}) REFERENCES {} (tenant_id, {}) "
        "DEFERRABLE INITIALLY DEFERRED"
    ).format(
        sql.Identifier(table),
        sql.Identifier(constraint_name(table, field.column)),
        sql.Identifier(field.column),
        sql.Identifier(target.db_table),
        sql.Identifier(target.pk.column),
    )
    return index, key


class CrossTenantRows(Exception):
    """Existing rows refer to another tenant's rows: the key cannot be added until they are corrected."""


def apply_after_migrate(sender: AppConfig, using: str = "default", **kwargs) -> None:
    conn = connections[using]
    if conn.vendor != "postgresql":
        return
    with conn.cursor() as cur:
        ensure_keys(cur, tenant_relations(sender))


def ensure_keys(cursor, relations: list[tuple[type[models.Model], models.ForeignKey]]) -> None:
    """Add the same-tenant keys that are missing. Raises CrossTenantRows, naming the table and column
    (never a value), when existing rows break one."""
    for model, field in relations:
        if not isinstance(field, SAME_TENANT):
            continue  # reported by violations(); a migration must not fail over it
        table = model._meta.db_table
        cursor.execute(
            "SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
            [table, constraint_name(table, field.column)],
        )
        if cursor.fetchone() is not None:
            continue
        index, key = _statements(model, field)
        cursor.execute(index)
        try:
            cursor.execute(key)
        except (IntegrityError, psycopg.errors.ForeignKeyViolation):
            target, column = field.related_model._meta.db_table, field.column
            # shown to the operator, never executed here
            find = f"SELECT t.id FROM {table} t LEFT JOIN {target} r ON r.id = t.{column} AND r.tenant_id = t.tenant_id"  # noqa: S608
            raise CrossTenantRows(
                f"{table}.{column}: some rows refer to a row of {target} of another tenant (or to none). Find them as "
                f"the owner role with: {find} WHERE t.{column} IS NOT NULL AND r.id IS NULL"
            ) from None


def violations(cursor=None) -> list[str]:
    """One line per relation between tenant models that is not a same-tenant key: declared as a plain
    ForeignKey, or (PostgreSQL, given a cursor) without its composite constraint in the catalogue."""
    problems = []
    for model, field in tenant_relations():
        label = f"{model._meta.label}.{field.name}"
        if not isinstance(field, SAME_TENANT):
            problems.append(f"{label}: a plain ForeignKey to another tenant's table; use SameTenantForeignKey")
            continue
        if cursor is None:
            continue
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' "
            "AND %s::smallint = ANY(conkey)",
            [model._meta.db_table, _attnum(cursor, model._meta.db_table, field.column)],
        )
        found = [row[0] for row in cursor.fetchall()]
        if found != [definition(field)]:
            problems.append(f"{label}: the database has {found or 'no foreign key'}, not {definition(field)}")
    return problems


def _attnum(cursor, table: str, column: str) -> int:
    cursor.execute("SELECT attnum FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s", [table, column])
    return cursor.fetchone()[0]
