"""Celery glue for tenant-scoped tasks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from celery import shared_task

from tenants.context import tenant_context
from tenants.models import Tenant


def tenant_task(**task_options: Any) -> Callable:
    """Declare a Celery task whose first argument is ``tenant_id``.

    The worker loads the tenant and runs the body inside ``tenant_context``, so the task sees that
    tenant's rows only (ORM and RLS) and the setting ends with the task's transaction.
    """
    task_options.setdefault("acks_late", True)

    def decorator(func: Callable[..., Any]) -> Any:
        @shared_task(name=f"{func.__module__}.{func.__name__}", **task_options)
        @functools.wraps(func)
        def run(tenant_id: int, *args: Any, **kwargs: Any) -> Any:
            tenant = Tenant.objects.get(pk=tenant_id)
            with tenant_context(tenant):
                return func(tenant, *args, **kwargs)

        return run

    return decorator
