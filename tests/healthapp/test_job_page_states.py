"""The shared import job page says the same thing as the history list, shows a moving bar while a file is
checked, and no table of applied counts that contradicts the progress bar while applying."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from healthapp.models import Job
from tenants.context import tenant_context
from tests.accounts.conftest import make_hr_admin
from tests.accounts.test_roster_import import person, roster_csv
from tests.conftest import TEST_PASSWORD, log_in

pytestmark = pytest.mark.usefixtures("private_storage")


@pytest.fixture
def hr_client(client, world):
    log_in(client, make_hr_admin(world).email, TEST_PASSWORD + "!x")
    return client


def _upload(client, data: bytes, mode: str = "partial", *, validate: bool = True, capture=None) -> Job:
    payload = {"file": SimpleUploadedFile("r.csv", data, content_type="text/csv"), "mode": mode}
    if validate:
        with capture(execute=True):
            client.post("/roster/import/", payload)
    else:
        client.post("/roster/import/", payload)
    return Job.objects.order_by("-pk").first()


def test_a_job_that_cannot_be_applied_says_so_on_its_page_as_in_the_history(
    hr_client, world, django_capture_on_commit_callbacks
):
    data = roster_csv([person("W1"), person("W2", birth="令和99年1月1日")])  # mode full with an error: blocked
    with tenant_context(world.tenant_a):
        job = _upload(hr_client, data, "full", capture=django_capture_on_commit_callbacks)
    assert job.state == Job.State.VALIDATED
    page = hr_client.get(f"/roster/import/{job.pk}/").content.decode()
    history = hr_client.get("/roster/import/").content.decode()
    blocked = "反映できません（ファイルを直して再アップロード）"
    assert blocked in page and "確認待ち" not in page.split('data-testid="job-state"')[1][:80]
    assert blocked in history


def test_a_file_being_checked_shows_a_bar_without_numbers(hr_client, world):
    with tenant_context(world.tenant_a):
        job = _upload(hr_client, roster_csv([person("W1")]), validate=False)  # the dry run is not run yet
    assert job.state == Job.State.UPLOADED
    page = hr_client.get(f"/roster/import/{job.pk}/").content.decode()
    assert 'data-testid="job-checking"' in page and 'data-job-status-url="' in page
    bar = re.search(r'<progress[^>]*data-testid="job-progress"[^>]*>', page).group(0)
    assert "value=" not in bar  # indeterminate: it moves without a number
    assert "0 / 0" not in page


def test_while_applying_no_applied_counts_contradict_the_bar(hr_client, world, django_capture_on_commit_callbacks):
    with tenant_context(world.tenant_a):
        job = _upload(hr_client, roster_csv([person("W1"), person("W2")]), capture=django_capture_on_commit_callbacks)
        job.state, job.rows_done = Job.State.APPLYING, 1
        job.counts = {
            **job.counts,
            "applied": {"added": 0, "updated": 0, "unchanged": 0, "deactivated": 0, "errors": 0},
        }
        job.save()
    page = hr_client.get(f"/roster/import/{job.pk}/").content.decode()
    assert 'data-testid="job-applied"' not in page and 'value="50" data-testid="job-progress"' in page
    with tenant_context(world.tenant_a):
        job.state, job.rows_done = Job.State.DONE, 2
        job.save()
    assert 'data-testid="job-applied"' in hr_client.get(f"/roster/import/{job.pk}/").content.decode()


def test_jobs_are_numbered_per_tenant_and_kind_and_the_page_shows_that_number(hr_client, world):
    import io

    from healthapp import jobs

    def make(tenant, kind: str) -> Job:
        with tenant_context(tenant):
            return jobs.job_create(kind=kind, upload=io.BytesIO(b"x"), file_name="f", max_bytes=10, options={},
                                   acting_user=None)  # fmt: skip

    first = make(world.tenant_a, Job.Kind.ROSTER)
    make(world.tenant_b, Job.Kind.ROSTER)  # another tenant's import takes no number of A's
    make(world.tenant_a, Job.Kind.CHECKUP)  # nor does another kind of import
    second = make(world.tenant_a, Job.Kind.ROSTER)
    assert (first.number, second.number) == (1, 2) and second.pk - first.pk == 3
    page = hr_client.get(f"/roster/import/{second.pk}/").content.decode()
    assert "名簿の取り込み #2" in page
    assert "#2 " in hr_client.get("/roster/import/").content.decode()
    assert hr_client.get(f"/roster/import/{second.pk}/status/").json()["number"] == 2
