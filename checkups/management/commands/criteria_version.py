"""Store a corrected criteria set as a new version (the same service as the admin's add form)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from checkups import criteria as criteria_data
from checkups import services
from checkups.models import CriteriaSet
from tenants.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "判定基準の新しい版を登録します / Store a JSON file as a NEW version of a criteria set "
        "(checked like the judging reads it; stored versions are never changed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="criteria set name, e.g. uniform_grades_v1")
        parser.add_argument("file", type=Path, help="JSON document (UTF-8)")
        parser.add_argument("--effective-from", required=True, help="YYYY-MM-DD: used for judgements from this day")
        parser.add_argument("--title", help="defaults to the title in the file, else the newest version's")
        parser.add_argument("--inactive", action="store_true", help="store it without using it for new judgements")
        parser.add_argument("--check", action="store_true", help="only check the file, store nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            effective_from = dt.date.fromisoformat(options["effective_from"])
            data = json.loads(options["file"].read_text(encoding="utf-8"))
        except ValueError as exc:  # bad date, bad JSON or bad UTF-8
            raise CommandError(f"読み込めません / cannot read the input: {exc}") from exc
        except OSError as exc:
            raise CommandError(f"ファイルを開けません / cannot open {options['file']}: {exc.strerror}") from exc
        if not isinstance(data, dict):
            raise CommandError("判定基準は JSON のオブジェクト（{ … }）で入力してください。")
        newest = CriteriaSet.objects.filter(name=options["name"]).order_by("-version").first()
        title = options["title"] or data.get("title") or (newest.title if newest else "")
        fields = {"name": options["name"], "title": title, "effective_from": effective_from, "data": data}
        try:
            if options["check"]:
                services.criteria_version_check(**fields)
                self.stdout.write(self.style.SUCCESS("OK"))
                return
            created = services.criteria_version_create(**fields, is_active=not options["inactive"], acting_user=None)
        except criteria_data.CriteriaError as exc:
            raise CommandError("\n".join(str(message) for message in exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"Stored {created.name} v{created.version} (id {created.pk})"))
