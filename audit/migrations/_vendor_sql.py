"""Raw SQL per database vendor for the audit migrations (the module name starts with "_": not a migration)."""


def run_for_vendor(statements: dict[str, list[str]]):
    """A RunPython function executing the statements listed for the migrating connection's vendor."""

    def run(apps, schema_editor) -> None:
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run
