"""A scratch PostgreSQL database for the benchmarks, created and dropped by the owner role like the
test database, then used through the application role (row-level security applies)."""

from __future__ import annotations

import os
import sys


def setup_database(name: str) -> object:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthapp.settings")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL (application role) and DATABASE_OWNER_URL (owner role) to PostgreSQL.")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases

    from healthapp.db import use_app_role, use_owner_role

    connection.settings_dict["TEST"]["NAME"] = name  # never the test suite's database
    use_owner_role()
    config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    use_app_role()
    return config


def teardown_database(config) -> None:
    from django.test.utils import teardown_databases

    from healthapp.db import use_owner_role

    use_owner_role()
    teardown_databases(config, verbosity=0)
