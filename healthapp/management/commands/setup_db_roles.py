"""Create the two PostgreSQL roles and the database (run once, as a superuser)."""

from __future__ import annotations

import dj_database_url
import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql
from psycopg.conninfo import make_conninfo


class Command(BaseCommand):
    help = (
        "Create the owner role (owns tables, runs migrations, BYPASSRLS for operator commands) and the "
        "application role (no ownership, no BYPASSRLS, not superuser) from DATABASE_OWNER_URL and "
        "DATABASE_URL, and the database owned by the owner. Connects with --admin-url as a superuser."
    )
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--admin-url",
            default="postgres://postgres@127.0.0.1:5432/postgres",
            help="A superuser connection used only for this set-up (default: %(default)s)",
        )

    def handle(self, *args, **options):
        app = dj_database_url.parse(settings.DATABASE_URL)
        owner = dj_database_url.parse(settings.DATABASE_OWNER_URL)
        if "postgresql" not in app["ENGINE"]:
            raise CommandError("DATABASE_URL must be a postgres:// URL / PostgreSQL の URL を指定してください")
        if app["USER"] == owner["USER"] or not app["USER"] or not owner["USER"]:
            raise CommandError("DATABASE_URL and DATABASE_OWNER_URL must name two different roles")
        if app["NAME"] != owner["NAME"]:
            raise CommandError("DATABASE_URL and DATABASE_OWNER_URL must name the same database")
        with psycopg.connect(options["admin_url"], autocommit=True) as conn:
            self._role(conn, owner["USER"], owner.get("PASSWORD"), "NOSUPERUSER CREATEDB BYPASSRLS")
            self._role(conn, app["USER"], app.get("PASSWORD"), "NOSUPERUSER NOCREATEDB NOBYPASSRLS")
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [app["NAME"]]).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(app["NAME"]), sql.Identifier(owner["USER"])
                    )
                )
                self.stdout.write(f"created database {app['NAME']}")
        in_database = make_conninfo(options["admin_url"], dbname=app["NAME"])
        with psycopg.connect(in_database, autocommit=True) as conn:
            conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
            conn.execute(
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
                ).format(sql.Identifier(owner["USER"]), sql.Identifier(app["USER"]))
            )
            conn.execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
                    sql.Identifier(owner["USER"]), sql.Identifier(app["USER"])
                )
            )
        self.stdout.write(self.style.SUCCESS(f"roles ready: owner={owner['USER']} app={app['USER']}"))

    def _role(self, conn, name: str, password: str | None, attributes: str) -> None:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone()
        verb = "ALTER" if exists else "CREATE"
        statement = sql.SQL(f"{verb} ROLE {{}} LOGIN {attributes}").format(sql.Identifier(name))
        conn.execute(statement)
        if password:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
        self.stdout.write(f"{verb.lower()}d role {name}")
