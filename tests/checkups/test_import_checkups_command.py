"""manage.py import_checkups: the upload page's services from the command line (CSV through a saved mapping,
MHLW XML / ZIP), a dry run that changes nothing, the re-check acknowledgement, errors by row and reason, and
an output without anyone's name or numbers."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.services import member_create
from audit.models import AuditEvent
from checkups import imports
from checkups.mhlw_sample import build_zip
from checkups.models import CheckupRecord, Judgement, PhysicianOpinion
from healthapp import jobs
from healthapp.job_command import in_both
from healthapp.models import Job
from tenants.context import tenant_context
from tests.checkups.test_imports import CSV_MAPPING, ITEMS, csv_bytes, doc

pytestmark = pytest.mark.usefixtures("private_storage")  # every test uploads

# Who the files are about: none of it may appear in what the command prints.
PEOPLE = [("EMP-70001", "検診 花子", "7731", "female"), ("EMP-70002", "検診 太郎", "7732", "male")]
PERSONAL = [text for person in PEOPLE for text in person[:3]] + ["ZZ-99999", "7799"]


def people(world):
    """Tenant A's two people, judgeable (sex and birth date) and findable by employee number and insurance card."""
    with tenant_context(world.tenant_a):
        return [
            member_create(
                employee_number=number,
                name=name,
                sex=sex,
                birth_date=dt.date(1970, 4, 15),
                insurance_symbol="ﾃｽﾄ",
                insurance_number=card,
                relationship="self",
            )
            for number, name, card, sex in PEOPLE
        ]


def save_mapping(world, provider: str = "テスト健診センター"):
    with tenant_context(world.tenant_a):
        return imports.mapping_save(provider=provider, mapping=CSV_MAPPING, acting_user=None)


def import_checkups(*args, verbosity: int = 0) -> str:
    out = io.StringIO()
    call_command("import_checkups", "--tenant", "tenant-a", *map(str, args), verbosity=verbosity, stdout=out)
    output = out.getvalue()
    assert not any(text in output for text in PERSONAL), output  # counts, rows, columns and reasons only
    return output


def refused(*args) -> str:
    with pytest.raises(CommandError) as error:
        import_checkups(*args)
    assert not any(text in str(error.value) for text in PERSONAL)
    return str(error.value)


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def good_csv() -> bytes:
    return csv_bytes([["EMP-70001", "2025-06-02", "132", "84", "5.7", "±", "あり"],
                      ["EMP-70002", "2025-06-02", "118", "76", "5.4", "−", "なし"]])  # fmt: skip


def checkup_jobs(world) -> list[Job]:
    with tenant_context(world.tenant_a):
        return list(Job.objects.filter(kind=Job.Kind.CHECKUP).order_by("pk"))


def test_a_provider_csv_is_applied_through_its_mapping_and_every_record_judged(world, tmp_path):
    hanako, taro = people(world)
    save_mapping(world)
    path = write(tmp_path, "results.csv", good_csv())  # .csv: read as a provider CSV without --source

    output = import_checkups("--mapping", "テスト健診センター", path)

    (job,) = checkup_jobs(world)
    assert job.state == Job.State.DONE and job.options["source"] == "csv" and job.confirmed_by is None
    assert f"job {job.label_number}: rows 2, added 2, updated 0, rechecks 0, unchanged 0, errors 0" in output
    assert f"Applied: added 2, updated 0, unchanged 0, judged 2, errors 0 (job {job.label_number})" in output
    with tenant_context(world.tenant_a):
        record = CheckupRecord.objects.get(member=hanako)
        assert record.result_values()["systolic"] == Decimal("132") and record.source == "csv"
        assert CheckupRecord.objects.filter(member=taro).exists()
        assert Judgement.objects.filter(record__member__in=[hanako, taro]).count() == 2
        event = AuditEvent.objects.get(action="checkup.imported", target_id=str(job.pk))
        assert event.actor_id is None and event.details["added"] == 2  # the operator: no acting user


def test_an_mhlw_zip_is_matched_by_insurance_card_and_applied(world, tmp_path):
    hanako, taro = people(world)
    path = write(tmp_path, "bundle.zip", build_zip([doc("7731", sex="female"), doc("7732")]))

    output = import_checkups(path)  # .zip: MHLW XML without --source

    (job,) = checkup_jobs(world)
    assert job.state == Job.State.DONE and job.options["source"] == "mhlw_xml"
    assert "Applied: added 2, updated 0, unchanged 0, judged 2" in output
    with tenant_context(world.tenant_a):
        assert {r.member_id: r.source for r in CheckupRecord.objects.all()} == {
            hanako.pk: "mhlw_xml",
            taro.pk: "mhlw_xml",
        }
        assert Judgement.objects.count() == 2


def test_a_single_xml_document_reads_as_mhlw_xml_too(world, tmp_path):
    people(world)
    import_checkups(write(tmp_path, "h0001.XML", doc("7732")))
    with tenant_context(world.tenant_a):
        assert CheckupRecord.objects.get().source == "mhlw_xml"


def test_a_dry_run_shows_the_counts_writes_no_record_and_drops_the_upload(
    world, tmp_path, private_storage, django_capture_on_commit_callbacks
):
    people(world)
    save_mapping(world)
    path = write(tmp_path, "results.csv", good_csv())

    with django_capture_on_commit_callbacks(execute=True):
        output = import_checkups("--mapping", "テスト健診センター", path, "--dry-run")

    assert "rows 2, added 2," in output and "Dry run: nothing changed." in output and "Applied" not in output
    with tenant_context(world.tenant_a):
        assert not CheckupRecord.objects.exists() and not Judgement.objects.exists()
        assert not AuditEvent.objects.filter(action="checkup.imported").exists()
    # The preview is not left for anyone to apply, and the uploaded file (health data) is deleted.
    (job,) = checkup_jobs(world)
    assert job.state == Job.State.CANCELLED
    assert not [p for p in (private_storage / "jobs").rglob("*") if p.is_file()]


def test_an_unknown_or_missing_mapping_names_the_tenants_mappings_only(world, tmp_path):
    people(world)
    save_mapping(world, "テスト健診センター")
    save_mapping(world, "別の健診機関")
    path = write(tmp_path, "results.csv", good_csv())

    message = refused("--mapping", "存在しない健診機関", path)
    assert "存在しない健診機関" in message and "Known: テスト健診センター, 別の健診機関" in message
    assert "B社の健診機関" not in message  # tenant B's mapping (tests/conftest.py) is not A's to see

    assert "Known: テスト健診センター, 別の健診機関" in refused(path)  # a CSV needs --mapping
    assert checkup_jobs(world) == []  # nothing uploaded


def test_a_missing_file_an_unknown_format_and_a_mapping_for_xml_are_command_errors(world, tmp_path):
    assert "No such file" in refused(tmp_path / "nowhere.csv")
    assert "--source" in refused(write(tmp_path, "results.txt", good_csv()))
    assert "CSV files only" in refused("--mapping", "テスト健診センター", write(tmp_path, "b.zip", build_zip([doc()])))
    assert checkup_jobs(world) == []


def test_errors_are_listed_by_row_column_and_reason_and_the_valid_records_applied(world, tmp_path):
    hanako, _taro = people(world)
    save_mapping(world)
    data = csv_bytes([
        ["EMP-70001", "2025-06-02", "132", "84", "5.7", "±", "あり"],
        ["EMP-70002", "2025-06-02", "1300", "84", "5.7", "−", "なし"],  # row 3: impossible BP
        ["ZZ-99999", "2025-06-02", "120", "80", "5.5", "−", "なし"],  # row 4: nobody on the roster
    ])  # fmt: skip
    path = write(tmp_path, "results.csv", data)

    output = import_checkups("--mapping", "テスト健診センター", path)

    assert "rows 3, added 1, updated 0, rechecks 0, unchanged 0, errors 2" in output
    implausible = {"row": 3, "column": "systolic", "code": "implausible"}
    reason = in_both(lambda: imports.row_error_message(implausible))  # Japanese / English
    assert f"  error row 3 収縮期血圧: {reason} [implausible]" in output and "outside" in reason
    assert "値が妥当な範囲（" in imports.row_error_message(implausible)  # the reason says what the item accepts
    reason = in_both(lambda: imports.error_message("member_not_found"))
    assert f"  error row 4 社員番号: {reason} [member_not_found]" in output
    assert "Applied: added 1, updated 0, unchanged 0, judged 1, errors 2" in output
    with tenant_context(world.tenant_a):
        assert list(CheckupRecord.objects.values_list("member_id", flat=True)) == [hanako.pk]


def test_warnings_are_listed_as_warnings(world, tmp_path):
    people(world)
    with tenant_context(world.tenant_a):
        imports.mapping_save(provider="P", mapping={k: v for k, v in CSV_MAPPING.items() if k != "喫煙"},
                             acting_user=None)  # fmt: skip
    output = import_checkups("--mapping", "P", write(tmp_path, "results.csv", good_csv()))
    reason = in_both(lambda: imports.error_message("column_ignored"))
    assert f"  warning row 1 喫煙: {reason} [column_ignored]" in output
    assert "warnings 1" in output and "Applied: added 2" in output


def test_a_file_where_nothing_applies_exits_non_zero_and_changes_nothing(
    world, tmp_path, private_storage, django_capture_on_commit_callbacks
):
    people(world)
    save_mapping(world)
    data = csv_bytes([["ZZ-99999", "2025-06-02", "120", "80", "5.5", "−", "なし"]])

    with django_capture_on_commit_callbacks(execute=True):
        message = refused("--mapping", "テスト健診センター", write(tmp_path, "results.csv", data))

    assert "Nothing to apply" in message
    (job,) = checkup_jobs(world)
    assert job.state == Job.State.CANCELLED
    with tenant_context(world.tenant_a):
        assert not CheckupRecord.objects.exists()
    assert not [p for p in (private_storage / "jobs").rglob("*") if p.is_file()]  # the refused upload is gone


def test_a_file_that_cannot_be_read_fails_with_its_reason(world, tmp_path):
    people(world)
    message = refused("--source", "mhlw_xml", write(tmp_path, "results.csv", good_csv()))
    assert imports.error_message("looks_like_csv") in message and "(looks_like_csv)" in message
    (job,) = checkup_jobs(world)
    assert job.state == Job.State.FAILED and job.error_code == "looks_like_csv"


def test_corrections_of_signed_records_need_the_acknowledgement(world, tmp_path):
    hanako, _taro = people(world)
    import_checkups(write(tmp_path, "first.zip", build_zip([doc("7731", sex="female")])))
    with tenant_context(world.tenant_a):
        record = CheckupRecord.objects.get(member=hanako)
        PhysicianOpinion.objects.create(record=record, fitness="normal", signed_by=world.admin_a)
    corrected = write(
        tmp_path, "corrected.zip", build_zip([doc("7731", sex="female", items={**ITEMS, "systolic": 150})])
    )

    message = refused(corrected)

    assert "--acknowledge-rechecks" in message and "1 record(s) a physician already signed" in message
    with tenant_context(world.tenant_a):
        record.refresh_from_db()
        assert record.result_values()["systolic"] == Decimal("128") and record.judgements.count() == 1
    assert checkup_jobs(world)[-1].state == Job.State.CANCELLED
    # the dry run says so too, and changes nothing
    assert "Applying needs --acknowledge-rechecks" in import_checkups(corrected, "--dry-run")

    output = import_checkups(corrected, "--acknowledge-rechecks")

    assert "rechecks 1" in output and "Applied: added 0, updated 1, unchanged 0, judged 1" in output
    with tenant_context(world.tenant_a):
        record.refresh_from_db()
        assert record.result_values()["systolic"] == Decimal("150") and record.judgements.count() == 2
    assert checkup_jobs(world)[-1].state == Job.State.DONE


def test_the_progress_bar_follows_the_apply_and_stays_quiet_at_verbosity_0(world, tmp_path, capsys):
    people(world)
    path = write(tmp_path, "bundle.zip", build_zip([doc("7731", sex="female"), doc("7732")]))
    import_checkups(path, verbosity=1)
    assert "2/2" in capsys.readouterr().err
    import_checkups(path, verbosity=0)  # unchanged now: applied all the same, without a bar
    assert capsys.readouterr().err == ""


def test_the_progress_bar_moves_chunk_by_chunk(world, tmp_path, monkeypatch):
    from healthapp import job_command as command  # the importers' commands share the bar

    monkeypatch.setattr(imports, "CHUNK_SIZE", 1)
    positions: list[int] = []

    class Bar(command.tqdm):
        def update(self, n=1):
            super().update(n)
            positions.append(self.n)

    monkeypatch.setattr(command, "tqdm", Bar)
    people(world)
    bundle = build_zip([doc("7731", sex="female"), doc("7732")])
    import_checkups(write(tmp_path, "bundle.zip", bundle), verbosity=1)
    assert positions[:2] == [1, 2] and positions[-1] == 2  # after each chunk, not only at the end


def test_checkup_import_apply_reports_progress_after_each_chunk(world, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 1)
    people(world)
    seen: list[tuple[str, int]] = []
    with tenant_context(world.tenant_a):
        job = imports.checkup_import_start(
            upload=io.BytesIO(build_zip([doc("7731", sex="female"), doc("7732")])), file_name="b.zip",
            source=imports.SOURCE_XML, mapping_id=None, acting_user=None, enqueue=False,
        )  # fmt: skip
        imports.checkup_import_validate(job_id=job.pk)
        imports.checkup_import_confirm(job=job, acting_user=None, enqueue=False)
    imports.checkup_import_apply(
        tenant=world.tenant_a, job_id=job.pk, progress=lambda j: seen.append((j.state, j.rows_done))
    )
    assert seen == [("applying", 1), ("applying", 2), ("done", 2)]


def test_a_failed_apply_fails_the_job_as_the_worker_does(world, tmp_path, monkeypatch):
    people(world)

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports, "checkup_import_apply_step", broken)
    message = refused(write(tmp_path, "bundle.zip", build_zip([doc("7731", sex="female")])))
    assert "The apply failed" in message
    (job,) = checkup_jobs(world)
    assert job.state == Job.State.FAILED and job.error_code == "internal"
    with tenant_context(world.tenant_a):
        assert AuditEvent.objects.filter(action="checkup.import_failed", target_id=str(job.pk)).exists()


def test_ctrl_c_during_the_dry_run_leaves_neither_a_preview_nor_the_file(
    world, tmp_path, private_storage, django_capture_on_commit_callbacks, monkeypatch
):
    people(world)

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(imports, "checkup_import_validate", interrupted)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(KeyboardInterrupt):
        import_checkups(write(tmp_path, "bundle.zip", build_zip([doc("7731", sex="female")])))
    (job,) = checkup_jobs(world)
    assert job.state == Job.State.FAILED and imports.error_message(job.error_code) == str(jobs.INTERRUPTED)
    assert not [p for p in (private_storage / "jobs").rglob("*") if p.is_file()]
