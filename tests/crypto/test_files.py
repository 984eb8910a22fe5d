"""Uploads are sealed at rest: block-wise AES-GCM under the tenant's key, seekable, tamper-evident."""

from __future__ import annotations

import io
import random
import zipfile

import pytest
from django.core.files.storage import default_storage

from healthapp import jobs
from healthapp.crypto.errors import DecryptionError
from healthapp.crypto.files import BLOCK_SIZE, HEADER_SIZE, MAGIC, SealingWriter, open_sealed
from healthapp.models import Job
from tenants.context import tenant_context

pytestmark = pytest.mark.usefixtures("private_storage")
STRIDE = 12 + BLOCK_SIZE + 16


def seal(tenant_id: int, data: bytes, *, pieces: int = 7) -> bytes:
    sink = io.BytesIO()
    writer = SealingWriter(sink, tenant_id)
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        writer.write(data[start : start + step])
    writer.finish()
    return sink.getvalue()


@pytest.mark.parametrize("size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE, 200_003])
def test_sealed_files_read_back_whole_and_from_any_offset(world, size):
    rng = random.Random(size)
    data = rng.randbytes(size)
    with tenant_context(world.tenant_a):
        sealed = seal(world.tenant_a.pk, data)
        assert sealed.startswith(MAGIC) and len(sealed) == HEADER_SIZE + max(1, -(-size // BLOCK_SIZE)) * 28 + size
        f = open_sealed(io.BytesIO(sealed), world.tenant_a.pk)
        assert f.read() == data
        assert f.seek(0, io.SEEK_END) == size
        for _ in range(20):
            start, length = rng.randint(0, size), rng.randint(0, 100_000)
            f.seek(start)
            assert f.read(length) == data[start : start + length]


def test_an_uploaded_roster_is_stored_without_a_byte_in_clear(world):
    text = "社員番号,氏名\r\nE-90210,封印 秘子\r\n" * 50
    with tenant_context(world.tenant_a):
        job = jobs.job_create(
            kind=Job.Kind.ROSTER, upload=io.BytesIO(text.encode("cp932")), file_name="r.csv",
            max_bytes=2**20, options={}, acting_user=None,
        )  # fmt: skip
        with default_storage.open(job.file, "rb") as stored:
            raw = stored.read()
        for needle in ("封印 秘子".encode("cp932"), b"E-90210", "社員番号".encode("cp932")):
            assert needle not in raw
        with jobs.job_open(job) as f:
            assert f.read().decode("cp932") == text


def test_a_zip_inside_a_sealed_file_opens_from_its_end(world):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.xml", "<x/>" * 30_000)
    with tenant_context(world.tenant_a):
        f = open_sealed(io.BytesIO(seal(world.tenant_a.pk, buffer.getvalue())), world.tenant_a.pk)
        assert zipfile.ZipFile(f).read("a.xml") == b"<x/>" * 30_000


def _blocks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    body = sealed[HEADER_SIZE:]
    return sealed[:HEADER_SIZE], [body[i : i + STRIDE] for i in range(0, len(body), STRIDE)]


def test_altered_reordered_cut_or_foreign_files_refuse_to_open(world):
    data = random.Random(1).randbytes(3 * BLOCK_SIZE + 10)
    with tenant_context(world.tenant_a):
        sealed = seal(world.tenant_a.pk, data)
        header, blocks = _blocks(sealed)
        flipped = bytearray(sealed)
        flipped[HEADER_SIZE + STRIDE + 100] ^= 1
        variants = {
            "altered": bytes(flipped),
            "reordered": header + blocks[1] + blocks[0] + b"".join(blocks[2:]),
            "cut after a full block": header + b"".join(blocks[:3]),
            "spliced from another file": header + b"".join(_blocks(seal(world.tenant_a.pk, data))[1][:1] + blocks[1:]),
        }
        for variant in variants.values():
            with pytest.raises(DecryptionError):
                open_sealed(io.BytesIO(variant), world.tenant_a.pk).read()
    with tenant_context(world.tenant_b), pytest.raises(DecryptionError):
        open_sealed(io.BytesIO(sealed), world.tenant_b.pk).read()  # another tenant's key


def test_a_file_stored_before_uploads_were_sealed_reads_as_it_is(world):
    legacy = "社員番号,氏名\r\n".encode("cp932")
    assert open_sealed(io.BytesIO(legacy), world.tenant_a.pk).read() == legacy


def test_a_side_file_swapped_in_storage_for_unsealed_bytes_is_refused_not_unmarshalled(world):
    """Side files were sealed from the first: plain marshal bytes put in their place (by whoever can write to the
    bucket) must never become rows an apply writes."""
    import marshal

    from django.core.files.base import ContentFile

    with tenant_context(world.tenant_a):
        job = jobs.job_create(kind="roster", upload=io.BytesIO(b"employee_number,name\nA9,x\n"), file_name="r.csv",
                              max_bytes=10**6, options={}, acting_user=None)  # fmt: skip
        forged = marshal.dumps([{"employee_number": "EVIL", "name": "injected"}], 4)
        default_storage.save(jobs.side_name(job), ContentFile(forged))
        job.plan = {"kept": [[0, len(forged)]], "kept_as": jobs._PACKED}
        with pytest.raises(DecryptionError):
            jobs.side_piece(job, 0)


def test_a_key_rotation_seals_the_files_of_unfinished_imports_again(world, django_capture_on_commit_callbacks):
    """rotate_keys --tenant: a preview's upload and the rows its dry run kept move to the new data key (the old
    one could otherwise never be retired), under new names, and still read as they were; the old copies go
    when the job ends (a worker step that read the old name meanwhile still finds them)."""
    from healthapp.crypto import keyring
    from healthapp.crypto.files import sealed_version
    from healthapp.crypto.rotation import tenant_keys_rotate

    text = "社員番号,氏名\r\nE-1,回転 一郎\r\n" * 3000
    piece = [{"employee_number": "E-1", "name": "回転 一郎"}]
    with tenant_context(world.tenant_a):
        job = jobs.job_create(kind="roster", upload=io.BytesIO(text.encode("cp932")), file_name="r.csv",
                              max_bytes=10**6, options={}, acting_user=None)  # fmt: skip
        with jobs.SideFile(job) as side:
            side.keep(piece)
            side.save(job.plan)
        job.state = Job.State.VALIDATED
        job.save()
        done = jobs.job_create(kind="roster", upload=io.BytesIO(b"a\n"), file_name="d.csv", max_bytes=10**6,
                               options={}, acting_user=None)  # fmt: skip
        jobs.job_finish(done)  # its file is deleted after the commit: not a file rotation looks at

    def versions(names) -> list:
        out = []
        for name in names:
            with default_storage.open(name, "rb") as raw:
                out.append(sealed_version(raw))
        return out

    old = (job.file, jobs.side_name(job))
    assert versions(old) == [1, 1]
    result = tenant_keys_rotate(tenant=world.tenant_a)
    keyring.forget_cached_keys()
    with tenant_context(world.tenant_a):
        job.refresh_from_db()
        new = (job.file, jobs.side_name(job))
        assert result["files"] == 2 and new != old and versions(new) == [2, 2]
        assert versions(old) == [1, 1]  # kept until the job ends
        with jobs.job_open(job) as f:
            assert f.read().decode("cp932") == text
        assert jobs.side_piece(job, 0) == piece
        job.plan = {}  # a dry run run again rewrites its plan: the old copies are still let go at the end
        job.save()
        with django_capture_on_commit_callbacks(execute=True):
            jobs.job_cancel(job_id=job.pk)
    assert not any(default_storage.exists(name) for name in (*old, *new))


def test_a_kept_file_that_no_longer_opens_fails_its_job_and_the_rotation_goes_on(world):
    from healthapp.crypto.rotation import tenant_keys_rotate

    with tenant_context(world.tenant_a):
        job = jobs.job_create(kind="roster", upload=io.BytesIO(b"a,b\n1,2\n"), file_name="r.csv", max_bytes=10**6,
                              options={}, acting_user=None)  # fmt: skip
    raw = bytearray(default_storage.open(job.file, "rb").read())
    raw[-1] ^= 1
    default_storage.delete(job.file)
    default_storage.save(job.file, io.BytesIO(bytes(raw)))
    assert tenant_keys_rotate(tenant=world.tenant_a)["new_version"] == 2
    with tenant_context(world.tenant_a):
        job.refresh_from_db()
    assert (job.state, job.error_code) == (Job.State.FAILED, "file_missing")
    assert tenant_keys_rotate(tenant=world.tenant_a)["new_version"] == 3  # nothing left over blocks the next


def test_an_applying_import_whose_side_file_no_longer_opens_ends_audited_and_leaves_no_new_copy(world):
    """Its upload is sealed again first, then its side file fails to open: the new copy is deleted at once,
    and the import ends as a failed apply does (audited with what its committed chunks changed)."""
    from audit.models import AuditEvent
    from healthapp.crypto.rotation import tenant_keys_rotate

    with tenant_context(world.tenant_a):
        job = jobs.job_create(kind="roster", upload=io.BytesIO(b"a,b\\n1,2\\n"), file_name="r.csv", max_bytes=10**6,
                              options={}, acting_user=None)  # fmt: skip
        with jobs.SideFile(job) as side:
            side.keep([{"a": 1}])
            side.save(job.plan)
        job.state = Job.State.APPLYING
        job.save()
    side_file = jobs.side_name(job)
    raw = bytearray(default_storage.open(side_file, "rb").read())
    raw[-1] ^= 1
    default_storage.delete(side_file)
    default_storage.save(side_file, io.BytesIO(bytes(raw)))
    before = set(default_storage.listdir(f"jobs/{world.tenant_a.pk}/roster")[1])
    tenant_keys_rotate(tenant=world.tenant_a)
    with tenant_context(world.tenant_a):
        job.refresh_from_db()
        failed = AuditEvent.objects.filter(action="roster.import_failed", target_id=str(job.pk)).count()
    assert (job.state, job.error_code, failed) == (Job.State.FAILED, "file_missing", 1)
    assert set(default_storage.listdir(f"jobs/{world.tenant_a.pk}/roster")[1]) <= before  # no new copy left
