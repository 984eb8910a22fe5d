"""Generic services for background file jobs (``healthapp.models.Job``).

A job owns one uploaded file in private storage. These helpers store it (hashing while streaming),
open it, lock the job row for a worker step, and record progress; what a row means belongs to the
importer (accounts.roster_import; checkups next).
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Callable
from typing import IO

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import require_tenant

READ_BLOCK = 64 * 1024


class FileTooLarge(AppError):
    pass


def job_create(*, kind: str, upload: IO[bytes], file_name: str, max_bytes: int, options: dict, acting_user) -> Job:
    """Store ``upload`` under a random name in private storage and create the job for it.

    The size limit is checked while reading, so a lying Content-Length or a stream without a size
    cannot get past it; the SHA-256 identifies the file in the audit log without its content.
    """

    tenant = require_tenant()
    size = getattr(upload, "size", None)
    too_large = FileTooLarge(
        "file_too_large", _("ファイルが大きすぎます（上限 %(mb)s MB）。") % {"mb": max_bytes // 2**20}
    )
    if size is not None and size > max_bytes:
        raise too_large
    digest = hashlib.sha256()
    total = 0
    if hasattr(upload, "seek"):
        upload.seek(0)
    # Spooled copy: checked and hashed block by block (a lying size cannot pass the limit), in memory
    # up to a few MB, then on local disk; every storage backend (local, S3) can save a real file.
    with tempfile.SpooledTemporaryFile(max_size=8 * 2**20) as spool:
        while block := upload.read(READ_BLOCK):
            total += len(block)
            if total > max_bytes:
                raise too_large
            digest.update(block)
            spool.write(block)
        if total == 0:
            raise AppError("empty_file", _("ファイルが空です。"))
        spool.seek(0)
        name = f"jobs/{tenant.pk}/{kind}/{uuid.uuid4().hex}.csv"
        stored = default_storage.save(name, File(spool, name=name))
    return Job.objects.create(
        kind=kind,
        file=stored,
        file_name=(file_name or "")[:255],
        file_size=total,
        file_sha256=digest.hexdigest(),
        options=options,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )


def job_open(job: Job) -> IO[bytes]:
    return default_storage.open(job.file, "rb")


def job_get(*, job_id: int, kind: str) -> Job:
    """The current tenant's job of ``kind``; another tenant's or a missing id is the same 404."""
    job = Job.objects.filter(pk=job_id, kind=kind).first()
    if job is None:
        raise Http404
    return job


def job_lock(*, job_id: int) -> Job | None:
    """The job row locked for one worker step (PostgreSQL: SELECT … FOR UPDATE), inside the caller's
    transaction, so two deliveries of the same step run one after the other."""
    return Job.objects.select_for_update().filter(pk=job_id).first()


def job_confirm(
    *, job: Job, acting_user, can_apply: Callable[[Job], bool], busy_message: str, applied: dict[str, int]
) -> Job:
    """The admin accepts a validated job's preview: it moves to APPLYING with zeroed ``applied``
    counts. Refused when ``can_apply`` says no, or while another job of the same kind is applying."""
    locked = job_lock(job_id=job.pk)
    if locked is None or not can_apply(locked):
        raise AppError("not_applicable", _("この取り込みは反映できません。"))
    if Job.objects.filter(kind=locked.kind, state=Job.State.APPLYING).exclude(pk=locked.pk).exists():
        raise AppError("busy", busy_message)
    locked.state, locked.rows_done, locked.next_chunk = Job.State.APPLYING, 0, 0
    locked.confirmed_by = acting_user if getattr(acting_user, "pk", None) else None
    locked.counts = {**locked.counts, "applied": dict(applied)}
    locked.save()
    return locked


def job_fail(job: Job, *, code: str) -> None:
    job.state = Job.State.FAILED
    job.error_code = code
    job.finished_at = timezone.now()
    job.save()
    job_discard_file(job)


def job_finish(job: Job) -> None:
    """The twin of job_fail: every row done, the job closed and its uploaded file let go."""
    job.state, job.rows_done, job.finished_at = Job.State.DONE, job.rows_total, timezone.now()
    job.save()
    job_discard_file(job)


def job_discard_file(job: Job) -> None:
    """Delete the uploaded file once the job no longer needs it (it holds personal data in clear);
    after the commit, so a rolled-back step still finds its file on the retry."""
    name = job.file
    transaction.on_commit(lambda: default_storage.delete(name))


def job_status(job: Job) -> dict:
    """What the progress bar polls: no personal data, no file name."""
    return {
        "id": job.pk,
        "state": job.state,
        "state_label": str(job.get_state_display()),
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "percent": job.percent,
        "counts": job.counts,
        "error_code": job.error_code,
        "finished": job.is_finished,
    }


def on_commit(func, *args) -> None:
    """Enqueue after the surrounding transaction commits (a worker must see the rows it is sent)."""
    transaction.on_commit(lambda: func(*args))
