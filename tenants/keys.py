"""Same-tenant foreign keys: ``(tenant_id, <column>) → target (tenant_id, id)`` on PostgreSQL.

Every relation from a tenant-scoped model to another model with a tenant (tenant-scoped, or the logins
of ``accounts.User``) is a ``SameTenantForeignKey`` (or ``SameTenantOneToOneField``); after every
``migrate`` (post_migrate, idempotently, by the owner role, like tenants.rls) its table gets the
composite key and the target a unique ``(tenant_id, id)`` index for it to refer to. Django's model
state does not know these (it has no composite foreign keys), as it does not know the policies.
``violations`` lists what is missing; tests/tenants/test_same_tenant_keys.py runs it on the catalogue.

Fewer checks per row where one key proves another's target: a relation declared ``within`` another (a
member's department within their office) has the other's column in its key, and the other relation's own
key is then on a generated column that is NULL wherever this one is set (``key_column``); a model with
``tenant_key_unless = "<relation>"`` (the member, by its office) has its own key to the tenant on such a
column instead of Django's plain one. An imported member costs one key check, not three.
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


def target_index_name(table: str, columns: list[str] | None = None) -> str:
    return _name(table, "_".join(columns or ["tenant_id", "id"]), "key")


def _proving(field: models.ForeignKey) -> models.ForeignKey | None:
    """The field of the same row whose key proves ``field``'s target too (a member's department, for its
    office): declared on that field as ``within``."""
    for other in field.model._meta.concrete_fields:
        if getattr(other, "within", None) == field.name:
            return other
    return None


def key_column(field: models.ForeignKey) -> str:
    """The column ``field``'s key is on: its own, or, when another key of the row proves the target
    whenever that other column is set, a generated copy that is NULL then (``<column>_unproven``),
    so PostgreSQL checks one key per row instead of both."""
    return f"{field.column}_unproven" if _proving(field) else field.column


def _columns(field: models.ForeignKey) -> tuple[list[str], list[str]]:
    """(the row's key columns, the target's columns they refer to). A field declared ``within`` another (a
    member's department within its office) refers to the target's (tenant_id, <that field>, id): the
    department must be one of the office's, and its key proves the office as well."""
    target = field.related_model._meta
    within = getattr(field, "within", None)
    outer = [field.model._meta.get_field(within).column] if within else []
    inner = [target.get_field(within).column] if within else []
    return ["tenant_id", *outer, key_column(field)], ["tenant_id", *inner, target.pk.column]


def definition(field: models.ForeignKey) -> str:
    """The constraint as pg_get_constraintdef prints it."""
    columns, targets = _columns(field)
    return (
        f"FOREIGN KEY ({', '.join(columns)}) REFERENCES {field.related_model._meta.db_table}({', '.join(targets)}) "
        "DEFERRABLE INITIALLY DEFERRED"
    )


def _generated(table: str, column: str, source: str, unless: str) -> sql.Composed:
    return sql.SQL(
        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} bigint "
        "GENERATED ALWAYS AS (CASE WHEN {} IS NULL THEN {} END) STORED"
    ).format(sql.Identifier(table), sql.Identifier(column), sql.Identifier(unless), sql.Identifier(source))


def _statements(model: type[models.Model], field: models.ForeignKey) -> list[sql.Composed]:
    table, target = model._meta.db_table, field.related_model._meta.db_table
    columns, targets = _columns(field)
    statements = []
    if proving := _proving(field):
        statements.append(_generated(table, key_column(field), field.column, proving.column))
    statements.append(
        sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(target_index_name(target, targets)),
            sql.Identifier(target),
            sql.SQL(", ").join(map(sql.Identifier, targets)),
        )
    )
    statements.append(
        sql.SQL(
            "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) DEFERRABLE INITIALLY DEFERRED"
        ).format(
            sql.Identifier(table),
            sql.Identifier(constraint_name(table, field.column)),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier(target),
            sql.SQL(", ").join(map(sql.Identifier, targets)),
        )
    )
    return statements


def _tenant_key(model: type[models.Model]) -> tuple[str, str, str] | None:
    """(constraint name, generated column, definition) of a model's own key to its tenant when another of
    its keys proves the tenant whenever set (``tenant_key_unless``: a member's office, whose row has the
    member's tenant); None for the models whose tenant key is Django's plain one (or none at all)."""
    unless = getattr(model, "tenant_key_unless", None)
    if unless is None:
        return None
    table = model._meta.db_table
    definition = "FOREIGN KEY (tenant_id_unproven) REFERENCES tenants_tenant(id) DEFERRABLE INITIALLY DEFERRED"
    return _name(table, "tenant_id_unproven", "fk"), "tenant_id_unproven", definition


class CrossTenantRows(Exception):
    """Existing rows refer to another tenant's rows: the key cannot be added until they are corrected."""


def apply_after_migrate(sender: AppConfig, using: str = "default", **kwargs) -> None:
    conn = connections[using]
    if conn.vendor != "postgresql":
        return
    with conn.cursor() as cur:
        ensure_keys(cur, tenant_relations(sender))
        ensure_tenant_keys(cur, tenant_models(sender))


def _existing_definition(cursor, table: str, name: str) -> str | None:
    cursor.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
        [table, name],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def _drop_constraint(cursor, table: str, name: str) -> None:
    cursor.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))


def ensure_keys(cursor, relations: list[tuple[type[models.Model], models.ForeignKey]]) -> None:
    """Add the same-tenant keys that are missing, and replace those the database holds otherwise than
    declared (an upgrade). Raises CrossTenantRows, naming the table and column (never a value), when
    existing rows break one."""
    for model, field in relations:
        if not isinstance(field, SAME_TENANT):
            continue  # reported by violations(); a migration must not fail over it
        table, name = model._meta.db_table, constraint_name(model._meta.db_table, field.column)
        found = _existing_definition(cursor, table, name)
        if found == definition(field):
            continue
        if found is not None:
            _drop_constraint(cursor, table, name)
        *prepare, key = _statements(model, field)
        for statement in prepare:
            cursor.execute(statement)
        try:
            cursor.execute(key)
        except (IntegrityError, psycopg.errors.ForeignKeyViolation):
            raise CrossTenantRows(_where_to_look(model, field)) from None


def _where_to_look(model: type[models.Model], field: models.ForeignKey) -> str:
    table, target, column = model._meta.db_table, field.related_model._meta.db_table, key_column(field)
    join = " AND ".join(f"r.{inner} = t.{outer}" for outer, inner in zip(*_columns(field), strict=True))
    # shown to the operator, never executed here
    find = f"SELECT t.id FROM {table} t LEFT JOIN {target} r ON {join}"  # noqa: S608
    return (
        f"{table}.{field.column}: some rows refer to a row of {target} of another tenant (or to none). Find them as "
        f"the owner role with: {find} WHERE t.{column} IS NOT NULL AND r.id IS NULL"
    )


def ensure_tenant_keys(cursor, models_: list[type[models.Model]]) -> None:
    """The conditional tenant keys (``_tenant_key``) of the models that declare one."""
    for model in models_:
        if (key := _tenant_key(model)) is None:
            continue
        name, column, wanted = key
        table = model._meta.db_table
        found = _existing_definition(cursor, table, name)
        if found == wanted:
            continue
        if found is not None:  # as ensure_keys: what the database holds otherwise than declared is replaced
            _drop_constraint(cursor, table, name)
        cursor.execute(_generated(table, column, "tenant_id", model._meta.get_field(model.tenant_key_unless).column))
        cursor.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} " + wanted).format(sql.Identifier(table), sql.Identifier(name))
        )


def violations(cursor=None) -> list[str]:
    """One line per relation between tenant models that is not a same-tenant key: declared as a plain
    ForeignKey, or (PostgreSQL, given a cursor) without its composite constraint in the catalogue (or with
    another foreign key on its column besides)."""
    problems = []
    relations = tenant_relations()
    declared = {definition(field) for _model, field in relations if isinstance(field, SAME_TENANT)}
    for model, field in relations:
        label = f"{model._meta.label}.{field.name}"
        if not isinstance(field, SAME_TENANT):
            problems.append(f"{label}: a plain ForeignKey to another tenant's table; use SameTenantForeignKey")
            continue
        if cursor is None:
            continue
        table, wanted = model._meta.db_table, definition(field)
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' "
            "AND (%s::smallint = ANY(conkey) OR %s::smallint = ANY(conkey))",
            [table, _attnum(cursor, table, field.column), _attnum(cursor, table, key_column(field))],
        )
        # Another field's key may include this column (a member's department key has the office in it).
        found = [row[0] for row in cursor.fetchall() if row[0] == wanted or row[0] not in declared]
        if found != [wanted]:
            problems.append(f"{label}: the database has {found or 'no foreign key'}, not {wanted}")
    if cursor is not None:
        for model in tenant_models():
            if (key := _tenant_key(model)) is not None and _existing_definition(
                cursor, model._meta.db_table, key[0]
            ) != key[2]:
                problems.append(f"{model._meta.label}.tenant: the database has no key to the tenant, not {key[2]}")
    return problems


def _attnum(cursor, table: str, column: str) -> int | None:
    cursor.execute("SELECT attnum FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s", [table, column])
    row = cursor.fetchone()
    return row[0] if row else None
