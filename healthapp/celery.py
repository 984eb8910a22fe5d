"""Celery application. Tasks take ``tenant_id`` and enter the tenant context (tenants.tasks)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthapp.settings")

app = Celery("healthapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
