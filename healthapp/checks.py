"""Checks: refuse a database role that row-level security would not apply to, tenant tables without
row-level security, and relations between tenant tables that are not same-tenant keys."""

from __future__ import annotations

from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from healthapp.env import env_secret
from tenants import keys
from tenants.rls import rls_violations


@register(Tags.database, deploy=True)
def check_application_role(app_configs=None, databases=None, **kwargs) -> list[Error]:
    if not databases or "default" not in databases:
        return []
    conn = connections["default"]
    if conn.vendor != "postgresql":
        return []
    with conn.cursor() as cur:
        cur.execute(
            "SELECT rolsuper, rolbypassrls, "
            "(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid AND c.relkind = 'r') "
            "FROM pg_roles r WHERE rolname = current_user"
        )
        superuser, bypass, owned = cur.fetchone()
    errors = []
    if superuser or bypass or owned:
        errors.append(
            Error(
                "The application database role is superuser, has BYPASSRLS or owns tables: row-level "
                "security would not isolate tenants.",
                hint="Run `manage.py setup_db_roles` and point DATABASE_URL at the application role.",
                id="healthapp.E001",
            )
        )
    with conn.cursor() as cur:
        errors.extend(
            Error(problem, hint="Run `manage.py migrate` (it applies the policies).", id="healthapp.E002")
            for problem in rls_violations(cur)
        )
        errors.extend(
            Error(problem, hint="Run `manage.py migrate` (it adds the same-tenant keys).", id="healthapp.E004")
            for problem in keys.violations(cur)
        )
    return errors


@register(Tags.models)
def check_same_tenant_keys(app_configs=None, **kwargs) -> list[Error]:
    """A relation between two tenant models must be a SameTenantForeignKey (tenants.keys)."""
    return [Error(problem, id="healthapp.E005") for problem in keys.violations()]


@register(Tags.security, deploy=True)
def check_master_key(app_configs=None, **kwargs) -> list[Error]:
    """Production must be given its master key (or KMS); it never generates one."""
    from healthapp.crypto.errors import CryptoError
    from healthapp.crypto.kek import master_keys, reset_master_keys

    reset_master_keys()
    try:
        master_keys()
    except (CryptoError, ImproperlyConfigured) as exc:
        return [
            Error(
                f"Master key unusable: {exc}",
                hint="Set HEALTHAPP_MASTER_KEY (base64 of 32 bytes).",
                id="healthapp.E003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_audit_archive_apart(app_configs=None, **kwargs) -> list[Warning]:
    """The audit archive in its own bucket under its own credentials: in the uploads' bucket (versioned for
    Object Lock) deleted uploads would keep their versions, and the application's file credentials could add
    batches to the archive (verify_audit reads each key's first version, but should not have to)."""
    from django.conf import settings

    if not settings.AUDIT_S3_BUCKET:
        return []
    problems = []
    if settings.AUDIT_S3_BUCKET == settings.S3_BUCKET:
        problems.append("AUDIT_S3_BUCKET is the uploads' bucket (S3_BUCKET)")
    if settings.S3_BUCKET and settings.AUDIT_S3_ACCESS_KEY_ID == env_secret("S3_ACCESS_KEY_ID"):
        problems.append("the audit archive is written with the file store's credentials")
    return [
        Warning(
            problem,
            hint="Give the archive its own Object Lock bucket (AUDIT_S3_BUCKET) and a key that may only put and "
            "read objects there (AUDIT_S3_ACCESS_KEY_ID / AUDIT_S3_SECRET_ACCESS_KEY).",
            id="healthapp.W010",
        )
        for problem in problems
    ]
