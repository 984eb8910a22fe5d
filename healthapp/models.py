"""Project-wide models: the generic background ``Job`` (roster import now, checkup import next)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from healthapp.crypto.fields import EncryptedTextField
from tenants.models import SameTenantForeignKey, TenantScopedModel


class Job(TenantScopedModel):
    """One uploaded file worked on by Celery: validated first (dry run), applied after confirmation.

    The browser polls ``state``/``rows_done``/``rows_total``. ``plan`` holds what the worker needs to
    resume (encoding, delimiter, byte offsets of the chunks); ``next_chunk`` is the resume pointer,
    advanced in the same transaction as the chunk's rows, so a killed worker re-runs at most one
    chunk and never applies one twice. ``errors`` carries row numbers, columns and reason codes
    only: never a cell's value.
    """

    class Kind(models.TextChoices):
        ROSTER = "roster", _("名簿の取り込み")
        CHECKUP = "checkup", _("健診結果の取り込み")

    class State(models.TextChoices):
        UPLOADED = "uploaded", _("アップロード済み")
        VALIDATING = "validating", _("検証中")
        VALIDATED = "validated", _("確認待ち")
        APPLYING = "applying", _("反映中")
        DONE = "done", _("完了")
        FAILED = "failed", _("失敗")
        CANCELLED = "cancelled", pgettext_lazy("job state", "取り消し")  # a preview discarded instead of applied

    # The large columns (a preview's row findings, the apply's chunk offsets): lists of jobs defer them.
    FINDINGS = ("errors", "plan")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    # What pages call the job ("名簿の取り込み #3"): counted per tenant and kind, so a tenant's numbers
    # run on without gaps and say nothing of other tenants' imports (the primary key is global).
    number = models.PositiveIntegerField(null=True, editable=False)
    state = models.CharField(max_length=12, choices=State.choices, default=State.UPLOADED)
    # In the associated data of file_name: a sealed name copied onto another job does not open there.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    file = models.CharField(max_length=255)  # name in private storage (STORAGES["default"])
    # As uploaded: it may name a person (山田太郎の健診.xml), so it is sealed like the file itself, and
    # pages show it to the uploader only.
    file_name = EncryptedTextField(null=True, default="", blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    file_sha256 = models.CharField(max_length=64)
    options = models.JSONField(default=dict, blank=True)
    plan = models.JSONField(default=dict, blank=True)
    # Storage names of files a key rotation sealed again under new ones (``jobs.job_files_reseal``): kept until
    # the job ends, for a worker step that read the old name; apart from ``plan``, which a dry run rewrites.
    superseded = models.JSONField(default=list, blank=True, editable=False)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    next_chunk = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    error_code = models.CharField(max_length=40, blank=True)  # a file-level failure, e.g. "encoding"
    created_by = SameTenantForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    confirmed_by = SameTenantForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("ジョブ")
        verbose_name_plural = _("ジョブ")
        indexes = [models.Index(fields=["tenant", "kind", "-created_at"])]
        constraints = [models.UniqueConstraint(fields=["tenant", "kind", "number"], name="job_number_per_tenant_kind")]

    def __str__(self) -> str:
        return f"Job #{self.pk} ({self.kind}, {self.state})"

    @property
    def label_number(self) -> int:
        return self.number or self.pk  # jobs made before numbers were counted per tenant keep their id

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        return int(self.rows_done * 100 / self.rows_total) if self.rows_total else 0

    @property
    def is_finished(self) -> bool:
        return self.state in {self.State.DONE, self.State.FAILED, self.State.CANCELLED}
