"""Migration operation: a foreign key that also requires the referenced row to be of the same tenant.

``FOREIGN KEY (tenant_id, <column>) REFERENCES <target> (tenant_id, id)``: one check per row proves
both that the target exists and that it belongs to the row's tenant, which row-level security alone
does not (a policy checks a row's own ``tenant_id``, and PostgreSQL's foreign-key checks ignore
policies). It replaces the two single-column keys (tenant, target), whose checks cost a bulk import
one index probe each per row. Django has no composite foreign keys, so the model declares both fields
with ``db_constraint=False`` and this operation adds the database's key (PostgreSQL only; the
embedded SQLite keeps Django's own cascades and checks). Deferred, like Django's foreign keys.
"""

from __future__ import annotations

from django.db import migrations
from psycopg import sql


class AddSameTenantForeignKey(migrations.operations.base.Operation):
    reversible = True
    reduces_to_sql = True

    def __init__(self, *, table: str, column: str, target: str, name: str) -> None:
        self.table, self.column, self.target, self.name = table, column, target, name

    def state_forwards(self, app_label, state) -> None:
        pass  # not part of Django's model state: the fields say db_constraint=False

    def _execute(self, schema_editor, statement: sql.Composable) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                schema_editor.execute(statement.as_string(cursor.connection))

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        self._execute(
            schema_editor,
            sql.SQL(
                "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (tenant_id, {}) REFERENCES {} (tenant_id, id) "
                "DEFERRABLE INITIALLY DEFERRED"
            ).format(
                sql.Identifier(self.table),
                sql.Identifier(self.name),
                sql.Identifier(self.column),
                sql.Identifier(self.target),
            ),
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        self._execute(
            schema_editor,
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(self.table), sql.Identifier(self.name)),
        )

    def describe(self) -> str:
        return f"Add same-tenant foreign key {self.name} on {self.table}.{self.column}"

    def deconstruct(self):
        kwargs = {"table": self.table, "column": self.column, "target": self.target, "name": self.name}
        return self.__class__.__qualname__, [], kwargs
