"""Generic services for background file jobs (``healthapp.models.Job``).

A job owns one uploaded file in private storage. These helpers store it (hashing while streaming),
open it, lock the job row for a worker step, and record progress; what a row means belongs to the
importer (accounts.roster_import; checkups next).
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import hashlib
import json
import logging
import marshal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import Max
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from healthapp.crypto.errors import DecryptionError
from healthapp.crypto.files import SealingWriter, open_sealed, reseal, sealed_version
from healthapp.errors import AppError
from healthapp.models import Job
from tenants.context import require_tenant, tenant_context

if TYPE_CHECKING:
    from tenants.models import Tenant

READ_BLOCK = 64 * 1024
logger = logging.getLogger(__name__)


class FileTooLarge(AppError):
    pass


# The importers' message for a job whose operator command was stopped (Ctrl-C) before it finished.
INTERRUPTED = gettext_lazy("コマンドが中断されたため、取り込みを終了しました。反映済みの分は残ります。")


def file_too_large(max_bytes: int) -> FileTooLarge:
    return FileTooLarge("file_too_large", _("ファイルが大きすぎます（上限 %(mb)s MB）。") % {"mb": max_bytes // 2**20})


def job_create(*, kind: str, upload: IO[bytes], file_name: str, max_bytes: int, options: dict, acting_user) -> Job:
    """Store ``upload`` under a random name in private storage and create the job for it.

    The size limit is checked while reading, so a lying Content-Length or a stream without a size
    cannot get past it; the SHA-256 identifies the file in the audit log without its content.
    """

    tenant = require_tenant()
    size = getattr(upload, "size", None)
    too_large = file_too_large(max_bytes)
    if size is not None and size > max_bytes:
        raise too_large
    digest = hashlib.sha256()
    total = 0
    if hasattr(upload, "seek"):
        upload.seek(0)
    # Spooled copy: checked, hashed and sealed block by block (a lying size cannot pass the limit), in
    # memory up to a few MB, then on local disk; every storage backend (local, S3) can save a real file.
    # Sealed under the tenant's data key (healthapp.crypto.files): the file is personal data, kept
    # until the apply, and nothing of it is ever written in clear, not even to the spool.
    with tempfile.SpooledTemporaryFile(max_size=8 * 2**20) as spool:
        sealing = SealingWriter(spool, tenant.pk)
        while block := upload.read(READ_BLOCK):
            total += len(block)
            if total > max_bytes:
                raise too_large
            digest.update(block)
            sealing.write(block)
        if total == 0:
            raise AppError("empty_file", _("ファイルが空です。"))
        sealing.finish()
        spool.seek(0)
        name = _new_file_name(tenant.pk, kind)
        stored = default_storage.save(name, File(spool, name=name))
    fields = {
        "kind": kind, "file": stored, "file_name": (file_name or "")[:255], "file_size": total,
        "file_sha256": digest.hexdigest(), "options": options,
        "created_by": acting_user if getattr(acting_user, "pk", None) else None,
    }  # fmt: skip
    for attempt in range(5):  # two uploads at once may count the same next number: the unique key tells
        number = (Job.objects.filter(kind=kind).aggregate(last=Max("number"))["last"] or 0) + 1
        try:
            with transaction.atomic():
                return Job.objects.create(number=number, **fields)
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _new_file_name(tenant_id: int, kind: str) -> str:
    """A job file's storage name: random, so it says nothing of the file or its uploader."""
    return f"jobs/{tenant_id}/{kind}/{uuid.uuid4().hex}.sealed"


def job_open(job: Job) -> IO[bytes]:
    """The uploaded file in clear, seekable, decrypted block by block as it is read."""
    return open_sealed(default_storage.open(job.file, "rb"), job.tenant_id)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a job's bulk loop (a dry run, an apply).

    A file's rows die by reference counting, but every container they allocate counts towards the
    collector's next run, and its runs walk every container still alive, the loaded modules' and the
    job's own sets of keys included: a quarter of a roster dry run's time went there. Paused, the loop
    calls ``chunk_done`` after each chunk, which collects the youngest generation only: whatever cycles a
    library leaves behind are freed chunk by chunk, and memory stays flat in the number of rows.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def chunk_done() -> None:
    """A chunk of a job's bulk loop is done: collect what it left in the youngest generation (see
    ``collector_paused``); nothing to do while the collector runs by itself."""
    if not gc.isenabled():
        gc.collect(0)  # not 1: what survives a chunk would be walked again after each chunk


def side_name(job: Job) -> str:
    """The storage name of the side file of ``job`` (see ``SideFile``)."""
    return side_name_of(job.file)


def side_name_of(upload: str) -> str:
    return upload.removesuffix(".sealed") + ".side.sealed"


# How a side file's pieces are written: marshal, for lists, dicts, text, numbers and None only. It reads
# and writes them 3-5x faster than JSON, in a third of the bytes to seal, and unlike pickle its loading
# never runs code; what it loads has been authenticated first (AES-GCM under the tenant's key, so only
# this application wrote it). Version 4 is what every Python since 3.4 reads. Side files of dry runs from
# before (no "kept_as" in the plan) are JSON.
_PACKED = "marshal-4"


def _pack(piece: Any) -> bytes:
    return marshal.dumps(piece, 4)


class SideFile:
    """What an importer's dry run keeps for its apply beside the upload (the rows it checked, say): one
    piece per chunk of the plan (lists, dicts, text, numbers, None), sealed like the upload and deleted
    with it (``job_discard_file``). Spooled in memory up to 1 MB, then on local disk, sealed before it is
    written anywhere; ``save`` replaces what an earlier, interrupted dry run left, and notes in the plan
    where each chunk's piece lies."""

    def __init__(self, job: Job) -> None:
        self._name = side_name(job)
        self._spool = tempfile.SpooledTemporaryFile(max_size=2**20)
        self._sealing = SealingWriter(self._spool, job.tenant_id)
        self._size = 0
        self._pieces: list[list[int] | None] = []  # per chunk: [offset, size] in the plaintext, or None

    def __enter__(self) -> SideFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._spool.close()

    def keep(self, piece: Any) -> None:
        """The next chunk's piece; None: nothing kept for it (its apply reads the upload)."""
        if piece is None:
            self._pieces.append(None)
            return
        data = _pack(piece)
        self._sealing.write(data)
        self._pieces.append([self._size, len(data)])
        self._size += len(data)

    def drop(self, chunk: int) -> None:
        """Chunk ``chunk``'s piece no longer holds all it must write: its apply reads the upload instead."""
        self._pieces[chunk] = None

    def save(self, plan: dict[str, Any]) -> None:
        """Store the file, if any chunk kept a piece, and note the pieces in ``plan`` (``side_piece``)."""
        if not any(self._pieces):
            return
        self._sealing.finish()
        self._spool.seek(0)
        default_storage.delete(self._name)  # a storage never overwrites: it would pick another name
        if default_storage.save(self._name, File(self._spool, name=self._name)) != self._name:
            raise RuntimeError("side file stored under another name")  # a second writer: the job lock failed
        plan["kept"], plan["kept_as"] = self._pieces, _PACKED


def side_piece(job: Job, chunk: int) -> Any:
    """What the dry run kept for chunk ``chunk``, as it was kept; None when it kept nothing for it (or the
    job was checked before dry runs kept anything)."""
    pieces = job.plan.get("kept", [])
    if chunk >= len(pieces) or pieces[chunk] is None:
        return None
    offset, size = pieces[chunk]
    # Side files were sealed from the first: unsealed bytes there were put by someone else, never unmarshalled.
    with open_sealed(default_storage.open(side_name(job), "rb"), job.tenant_id, sealed_only=True) as f:
        f.seek(offset)
        data = f.read(size)
    return marshal.loads(data) if job.plan.get("kept_as") == _PACKED else json.loads(data)  # noqa: S302 - AES-GCM-authenticated by open_sealed


# Jobs in these states still keep their upload (and maybe a side file); the others deleted theirs.
_KEEPING_FILES = (Job.State.UPLOADED, Job.State.VALIDATING, Job.State.VALIDATED, Job.State.APPLYING)


def job_files_stale(*, active_version: int) -> list[int]:
    """The current tenant's jobs that keep a file (the upload, a side file) sealed under another data-key
    version than ``active_version``, or stored in clear from before uploads were sealed."""
    stale = []
    for job in Job.objects.filter(state__in=_KEEPING_FILES).only("pk", "tenant", "file").order_by("pk"):
        for name in (job.file, side_name(job)):
            if default_storage.exists(name):
                with default_storage.open(name, "rb") as raw:
                    if sealed_version(raw) != active_version:
                        stale.append(job.pk)
                        break
    return stale


def job_files_reseal(*, active_version: int) -> int:
    """Seal the current tenant's kept job files again under its active data key (after a key rotation). Each
    job's files are written anew under a new name and the job is switched to it under its lock, in one
    transaction; the old files stay until the job ends (``job_discard_file``), so a worker step that read the
    old name meanwhile still finds them, and an interruption leaves the job on its old, complete files. A
    file that no longer opens fails its job (a preview nobody can apply), rather than stopping the rotation.
    Returns how many files were sealed again."""
    done = 0
    for job_id in job_files_stale(active_version=active_version):
        with transaction.atomic():
            job = job_lock(job_id=job_id)
            if job is None or job.state not in _KEEPING_FILES:
                continue  # finished meanwhile: its files are gone
            old = [name for name in (job.file, side_name(job)) if default_storage.exists(name)]
            if job.file not in old:
                job_fail(job, code="file_missing")
                continue
            new_file = _new_file_name(job.tenant_id, job.kind)
            written: list[str] = []
            try:
                for name, new in zip((job.file, side_name(job)), (new_file, side_name_of(new_file)), strict=True):
                    if name in old:
                        _store_resealed(job, name, new)
                        written.append(new)
            except DecryptionError:
                logger.warning("job %s: a kept file does not open under its tenant's keys; the job fails", job.pk)
                _delete(written)
                _fail_kept(job)
                continue
            except BaseException:
                _delete(written)  # the job stays on its old files
                raise
            job.superseded, job.file = [*job.superseded, *old], new_file
            job.save(update_fields=["file", "superseded", "updated_at"])
            done += len(old)
    return done


def _delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _fail_kept(job: Job) -> None:
    """A job whose kept file no longer opens ends; one being applied as its worker's error would end it
    (``job_apply_failed``: what its committed chunks changed stays, and is audited)."""
    if job.state == Job.State.APPLYING:
        action = {Job.Kind.ROSTER: "roster.import_failed", Job.Kind.CHECKUP: "checkup.import_failed"}[job.kind]
        job_apply_failed(tenant=job.tenant, job_id=job.pk, action=action, code="file_missing")
    else:
        job_fail(job, code="file_missing")


def _store_resealed(job: Job, name: str, new: str) -> None:
    with tempfile.SpooledTemporaryFile(max_size=8 * 2**20) as spool:
        # Side files were always sealed: bytes in clear there were put by someone else.
        reseal(default_storage.open(name, "rb"), spool, job.tenant_id, sealed_only=name != job.file)
        spool.seek(0)
        if default_storage.save(new, File(spool, name=new)) != new:
            raise RuntimeError("job file stored under another name")


def job_get(*, job_id: int, kind: str) -> Job:
    """The current tenant's job of ``kind``; another tenant's or a missing id is the same 404."""
    job = Job.objects.filter(pk=job_id, kind=kind).first()
    if job is None:
        raise Http404
    return job


def job_lock(*, job_id: int) -> Job | None:
    """The job row locked for one worker step (PostgreSQL: SELECT … FOR UPDATE), inside the caller's
    transaction, so two deliveries of the same step run one after the other. The error list (up to
    the importer's limit of entries) loads only if the step reads it: apply steps never do."""
    return Job.objects.select_for_update().defer("errors").filter(pk=job_id).first()


CONFIRM_LOCK = 0x6A6F62  # the advisory lock class of job confirms ("job"); the second key is the tenant


def plan_mask(todo: int, size: int) -> str:
    """A chunk's rows to write (bit i = row i of the chunk) as its plan keeps them: base64 of the bits."""
    return base64.b64encode(todo.to_bytes((size + 7) // 8, "little")).decode()


def plan_todo(mask: str) -> int:
    """The bits of a chunk's ``plan_mask``."""
    return int.from_bytes(base64.b64decode(mask), "little")


def job_confirm(
    *, job: Job, acting_user, can_apply: Callable[[Job], bool], busy_message: str, applied: dict[str, int]
) -> Job:
    """The admin accepts a validated job's preview: it moves to APPLYING with zeroed ``applied``
    counts. Refused when ``can_apply`` says no, or while another job of the same kind is applying.

    Two confirms of two jobs at once (two tabs) each lock only their own job, and neither would see the
    other's uncommitted APPLYING: the tenant's confirms take turns on a transaction-level advisory lock
    first (PostgreSQL; SQLite serialises writes anyway)."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [CONFIRM_LOCK, job.tenant_id])
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


# The tasks that carry a job forward, by kind: (validate, apply), each called with (tenant_id, job_id).
# Each importer's tasks module registers its own (healthapp knows no importer).
_TASKS: dict[str, tuple[Any, Any]] = {}


def register_tasks(kind: str, *, validate: Any, apply: Any) -> None:
    _TASKS[kind] = (validate, apply)


def jobs_resume_stalled(*, idle_seconds: int) -> int:
    """Hand the current tenant's jobs that stopped moving to a worker again: a validation or an apply
    whose message was lost (a broker restarted without persistence, an enqueue that failed after the
    commit) would otherwise stay "in progress" forever, its file kept and every later confirm "busy".
    Safe to repeat: every step locks its job and skips what is committed (a running task just finds
    its chunks done)."""
    before = timezone.now() - dt.timedelta(seconds=idle_seconds)
    moving = (Job.State.UPLOADED, Job.State.VALIDATING, Job.State.APPLYING)
    tenant_id, resumed = require_tenant().pk, 0
    for job_id, kind, state in Job.objects.filter(state__in=moving, updated_at__lt=before).values_list(
        "pk", "kind", "state"
    ):
        tasks = _TASKS.get(kind)
        if tasks is None:
            continue
        task = tasks[1] if state == Job.State.APPLYING else tasks[0]
        on_commit(task.delay, tenant_id, job_id)
        resumed += 1
    return resumed


def jobs_expire_unconfirmed(*, keep_days: int) -> int:
    """Fail the current tenant's jobs left unconfirmed (or stuck before their preview) for ``keep_days``,
    of every kind: the upload, personal or health data, does not stay around. Each job is locked and its
    state read again, so a confirm (or a worker step) racing the sweep wins, never half-overwritten."""
    stale = timezone.now() - dt.timedelta(days=keep_days)
    waiting = (Job.State.UPLOADED, Job.State.VALIDATING, Job.State.VALIDATED)
    expired = 0
    for job_id in Job.objects.filter(state__in=waiting, updated_at__lt=stale).values_list("pk", flat=True):
        with transaction.atomic():
            job = job_lock(job_id=job_id)
            if job is not None and job.state in waiting and job.updated_at < stale:
                job_fail(job, code="expired")
                expired += 1
    return expired


def job_cancel(*, job_id: int) -> Job:
    """The admin discards a preview instead of applying it: the job ends and its file is deleted. Only a
    validated job (locked, its state read again: a confirm racing the discard wins or loses whole)."""
    job = job_lock(job_id=job_id)
    if job is None or job.state != Job.State.VALIDATED:
        raise AppError("not_cancellable", _("この取り込みは取り消せません（反映中か、すでに終わっています）。"))
    job.state, job.finished_at = Job.State.CANCELLED, timezone.now()
    job.save()
    job_discard_file(job)
    return job


def job_fail(job: Job, *, code: str) -> None:
    job.state = Job.State.FAILED
    job.error_code = code
    job.finished_at = timezone.now()
    job.save()
    job_discard_file(job)


def job_abandon(*, tenant: Tenant, job_id: int) -> None:
    """An operator command stopped (Ctrl-C, an error) before its job was applied: the job fails as
    interrupted and its file is deleted, so no preview is left behind for someone to confirm."""
    with transaction.atomic(), tenant_context(tenant):
        job = job_lock(job_id=job_id)
        if job is not None and job.state in (Job.State.UPLOADED, Job.State.VALIDATING, Job.State.VALIDATED):
            job_fail(job, code="interrupted")


def job_apply_failed(*, tenant: Tenant, job_id: int, action: str, code: str = "internal") -> None:
    """An apply that stopped on an error (or was interrupted: ``code``): the job fails, and what its
    committed chunks changed is audited (counts only), since those changes stay. Called by the worker
    after the error was logged."""
    import audit  # audit's models import this app's: not at module level

    with transaction.atomic(), tenant_context(tenant):
        job = job_lock(job_id=job_id)
        if job is None or job.state != Job.State.APPLYING:
            return
        job_fail(job, code=code)
        audit.record(
            action=action,
            target_type="job",
            target_id=job.pk,
            actor=job.confirmed_by,
            details={
                "error": code,
                "mode": job.options.get("mode"),
                "rows": job.rows_total,
                "rows_done": job.rows_done,
                "chunks_done": job.next_chunk,
                "chunks": len(job.plan.get("chunks", [])),
                "applied": job.counts.get("applied", {}),
                "file_sha256": job.file_sha256,
                "file_size": job.file_size,
            },
        )


def job_finish(job: Job) -> None:
    """The twin of job_fail: every row done, the job closed and its uploaded file let go."""
    job.state, job.rows_done, job.finished_at = Job.State.DONE, job.rows_total, timezone.now()
    job.save()
    job_discard_file(job)


def job_discard_file(job: Job) -> None:
    """Delete the uploaded file, and the side file its dry run kept, once the job no longer needs them
    (personal data, if sealed); after the commit, so a rolled-back step still finds them on the retry."""
    # A side file too, if the dry run kept one, and the files a key rotation sealed again under new names.
    names = [job.file, side_name(job), *job.superseded]

    transaction.on_commit(lambda: _delete(names))


def job_status(job: Job) -> dict:
    """What the progress bar polls: no personal data, no file name."""
    return {
        "id": job.pk,
        "number": job.label_number,
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


def job_apply(
    *,
    tenant: Tenant,
    job_id: int,
    step: Callable[..., bool],
    prepare: Callable[[Job, int], Any] | None = None,
    progress: Callable[[Job], None] | None = None,
) -> None:
    """Apply a confirmed job, each chunk in a transaction of its own (what an importer's worker runs).

    ``step(job_id=…, prepared=…)`` locks the job, writes its next chunk (or finishes the job) inside
    the caller's transaction and returns True while steps remain; ``prepare(job, index)`` is what it
    would read, check and compute for chunk ``index`` before writing, and must ignore a prepared
    chunk that is not the one due. On PostgreSQL the writing of chunk n (server time: inserts, index,
    policy and foreign-key checks) overlaps the preparing of chunk n + 1 (client time): a second thread
    with its own connection runs the steps while this one prepares. Each step still locks the job and
    commits its chunk with ``next_chunk``, so a crash or a redelivery behaves as with one thread.
    Inside an outer transaction (tests, SQLite) the steps simply run one after another.
    """

    def report() -> None:
        if progress:
            with transaction.atomic(), tenant_context(tenant):
                progress(Job.objects.get(pk=job_id))

    def write(prepared: Any) -> None:
        with transaction.atomic(), tenant_context(tenant):
            step(job_id=job_id, prepared=prepared)

    connection = connections[DEFAULT_DB_ALIAS]
    if prepare is not None and connection.vendor == "postgresql" and not connection.in_atomic_block:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-writer") as writer, collector_paused():
            try:
                writing = None
                with transaction.atomic(), tenant_context(tenant):
                    job = Job.objects.get(pk=job_id)
                index, chunks = job.next_chunk, len(job.plan.get("chunks", []))
                while job.state == Job.State.APPLYING and index < chunks:
                    with transaction.atomic(), tenant_context(tenant):
                        prepared = prepare(job, index)
                    if writing is not None:
                        writing.result()  # a failed write stops the import here (and is raised)
                        report()
                    writing = writer.submit(write, prepared)
                    index += 1
                    chunk_done()
                if writing is not None:
                    writing.result()
            finally:
                writer.submit(connections.close_all).result()  # the writer thread's connection
    while True:  # one thread: every step; after the pipeline: normally just the finishing step
        with transaction.atomic(), tenant_context(tenant):
            more = step(job_id=job_id, prepared=None)
        report()
        if not more:
            return
