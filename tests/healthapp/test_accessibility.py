"""What assistive technology needs of the pages: every aria-describedby names an element that exists (help
texts and errors Django's widgets point at), a skip link and named navigation, the current language said,
repeated follow-up forms named by whose checkup they record, and titles that tell pages apart."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.checkups.test_checkup_pages import _client, clinic  # noqa: F401  (the fixture)
from tests.conftest import TEST_PASSWORD, log_in

pytestmark = pytest.mark.usefixtures("private_storage")


def _dangling_descriptions(page: str) -> list[str]:
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    described = [ref for refs in re.findall(r'aria-describedby="([^"]+)"', page) for ref in refs.split()]
    return [ref for ref in described if ref not in ids]


def test_help_texts_and_errors_are_the_elements_fields_are_described_by(world, clinic):  # noqa: F811
    hr = _client("hr@a.example")  # hr_staff over the whole tenant: both importers
    pages = {
        "roster upload": hr.get("/roster/import/"),
        "roster upload refused": hr.post("/roster/import/", {"mode": "partial"}),
        "checkup upload refused": hr.post(
            "/checkups/import/", {"file": SimpleUploadedFile("a.csv", b"x"), "source": "csv"}
        ),
        "mapping form": hr.get("/checkups/import/mappings/"),
        "mapping refused": hr.post("/checkups/import/mappings/", {"provider": "", "mapping": "x"}),
    }
    doctor = _client("doc@a.example")
    pages["opinion refused"] = doctor.post(f"/checkups/review/{clinic['record'].pk}/", {"fitness": ""})
    for name, response in pages.items():
        page = response.content.decode()
        assert response.status_code == 200, name
        assert "aria-describedby" in page, name  # the check below has something to check
        assert _dangling_descriptions(page) == [], name
    refused = pages["roster upload refused"].content.decode()
    assert re.search(r'<div id="id_file_error" role="alert">', refused)


def test_pages_have_a_skip_link_named_navigation_and_say_the_current_language(world):
    client = Client()
    log_in(client, "member@a.example", TEST_PASSWORD)
    page = client.get("/").content.decode()
    assert '<a class="skip-link" href="#main">' in page and '<main id="main"' in page
    assert 'data-testid="app-nav" aria-label="メニュー"' in page
    assert re.search(r'value="ja" class="link current"\s+lang="ja" aria-pressed="true"', page)
    assert re.search(r'value="en" class="link"\s+lang="en" aria-pressed="false"', page)


def test_each_follow_up_form_is_named_by_whose_checkup_it_records(world, clinic):  # noqa: F811
    from accounts.models import Role
    from checkups.services import physician_opinion_record
    from tenants.context import tenant_context

    with tenant_context(world.tenant_a):
        doctor = type(clinic["doc"]).objects.get(pk=clinic["doc"].pk)
        assert doctor.role == Role.PHYSICIAN
        physician_opinion_record(record=clinic["record"], fitness="normal", follow_up="recheck", opinion="",
                                 restrictions=[], acting_user=doctor)  # fmt: skip
    page = _client("hr@a.example").get("/checkups/conclusions/").content.decode()
    assert 'role="group" aria-label="甲野 0（2025-05-20 の健診）の事後措置"' in page
    english = _client("hr@a.example")
    english.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Visit date" in english.get("/checkups/conclusions/").content.decode()


def test_record_and_job_pages_have_titles_of_their_own(world, clinic):  # noqa: F811
    page = _client("doc@a.example").get(f"/checkups/review/{clinic['record'].pk}/").content.decode()
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert title.startswith(f"就業判定（2025-05-20 #{clinic['record'].pk}）") and "甲野" not in title  # no name
    member = clinic["record"].member  # a roster entry's page is told apart from the list, by number only
    page = _client("admin@a.example", TEST_PASSWORD + "!x").get(f"/roster/{member.pk}/").content.decode()
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert title.startswith(f"名簿 #{member.pk}") and "甲野" not in title
