import shutil

from django.core.management.base import CommandError
from tqdm import tqdm

from healthapp.crypto import kek as kek_module
from healthapp.crypto.keyring import master_key_rewrap
from healthapp.crypto.rotation import tenant_keys_rotate
from tenants.management.base import OperatorCommand, resolve_tenant


class Command(OperatorCommand):
    help = (
        "Rotate encryption keys. 暗号鍵を更新します。 --kek re-wraps every tenant data key under the current "
        "master key (rows untouched). --tenant SLUG starts a new data-key version and re-encrypts that "
        "tenant's rows in batches, and the files unfinished imports keep; re-run it after an interruption to resume."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--kek", action="store_true", help="re-wrap data keys under the current master key")
        group.add_argument("--tenant", metavar="SLUG", help="rotate this tenant's data key and re-encrypt its rows")
        parser.add_argument(
            "--new-master-key",
            action="store_true",
            help="with --kek on the embedded default: generate a new var/keys/master.key first "
            "(the old one is kept as master-<id>.previous until you delete it)",
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options):
        if options["kek"]:
            if options["new_master_key"]:
                self._generate_local_master_key()
            count = master_key_rewrap()
            current, _ = kek_module.master_keys()
            self.stdout.write(self.style.SUCCESS(f"Re-wrapped {count} keys under master key {current.kek_id}"))
            return
        tenant = resolve_tenant(options["tenant"])
        with tqdm(total=0, unit="rows", desc=f"re-encrypt {tenant.slug}", file=self.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            result = tenant_keys_rotate(tenant=tenant, batch_size=options["batch_size"], progress=progress)
        verb = "Rotated to" if result["started_new"] else "Resumed rotation to"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} data key v{result['new_version']} for {tenant.slug}: "
                f"{result['rewritten']} of {result['rows']} rows re-encrypted, "
                f"{result['files']} kept import file(s) sealed again"
            )
        )

    def _generate_local_master_key(self) -> None:
        current, _ = kek_module.master_keys()
        path = kek_module.keys_dir() / "master.key"
        if not isinstance(current, kek_module.LocalKek) or not path.exists():
            raise CommandError(
                "--new-master-key only works with the generated var/keys/master.key; with "
                "HEALTHAPP_MASTER_KEY set a new key and list the old one in HEALTHAPP_PREVIOUS_MASTER_KEYS"
            )
        shutil.move(path, path.with_name(f"master-{current.kek_id.split(':')[1]}.previous"))
        kek_module.generate_master_key_file(path)
        kek_module.reset_master_keys()
