"""Rows of a tenant's table by a list of keys, one index probe per key.

The importers look up a chunk of a thousand blind-index keys at a time. ``field__in`` (or
``= ANY(array)``) leaves the plan to table statistics, and a table that has never been analysed (a new
database, or the first big import of a new tenant: the application role may not ANALYZE) has none:
PostgreSQL then takes ``col = ANY(1000 keys)`` for unselective, scans the tenant's whole part of the
table for every chunk, and an import grows quadratic in its size. Here each key is probed through the
tenant's composite index, whatever the statistics say.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from psycopg import sql as pgsql

from tenants.context import require_tenant


def rows_by_keys(model: type[Model], key_field: str, keys: Sequence[str], fields: Sequence[str]) -> Iterator[tuple]:
    """``(key, *fields)`` of the current tenant's rows whose ``key_field`` is one of ``keys`` (blind
    indexes: hex text, never a comma). Values come as ``values_list`` gives them on every database
    (encrypted fields as their sealed bytes, an empty optional one as "")."""
    tenant = require_tenant()  # fails closed in the application, as row-level security does below it
    keys = list(dict.fromkeys(keys))  # a key asked twice is one probe (unnest would return its rows twice)
    if not keys:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        for start in range(0, len(keys), 500):
            batch = model.objects.filter(**{f"{key_field}__in": keys[start : start + 500]})
            yield from batch.values_list(key_field, *fields)
        return
    opts = model._meta
    model_fields = [opts.pk if name == "pk" else opts.get_field(name) for name in fields]
    columns = [f.column for f in model_fields]
    # The fields' own conversions, as the ORM applies them (the driver already gives uuids and dates)
    converters = [
        (at, convert, f.get_col(opts.db_table))
        for at, f in enumerate(model_fields, start=1)
        for convert in f.get_db_converters(connection)
    ]
    # OFFSET 0 keeps the planner from flattening the probe into a join over the whole table.
    query = pgsql.SQL(
        "SELECT k.key, {columns} FROM unnest(string_to_array(%s, ',')) AS k(key) CROSS JOIN LATERAL "
        "(SELECT {inner} FROM {table} t WHERE t.tenant_id = %s AND t.{key} = k.key OFFSET 0) AS m"
    ).format(
        columns=pgsql.SQL(", ").join(pgsql.Identifier("m", c) for c in columns),
        inner=pgsql.SQL(", ").join(pgsql.Identifier("t", c) for c in columns),
        table=pgsql.Identifier(opts.db_table),
        key=pgsql.Identifier(opts.get_field(key_field).column),
    )
    without_jit()
    with connection.cursor() as cursor:
        # One text parameter: binding a thousand array elements costs more than the probes.
        cursor.execute(query.as_string(connection.connection), [",".join(keys), tenant.pk])
        rows = cursor.fetchall()
    for row in rows:
        if converters:
            row = list(row)
            for at, convert, expression in converters:
                row[at] = convert(row[at], expression, connection)
        yield tuple(row)


def without_jit() -> None:
    """No JIT compilation for the rest of the transaction's lookups (PostgreSQL). Without table
    statistics the cost estimates of chunk lookups grow with the table, past the JIT thresholds, and
    compiling took 0.6 s for a lookup that runs in 2 ms: most of a large first import's time."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
