"""Every write to the audit log: record an event, ship chains to the archive, prune expired events;
and the chain verification operators run.

``record`` is the one entry point for the rest of the code base (``import audit; audit.record(...)``).
It runs inside the caller's transaction, so an event exists exactly when the change it records does.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
import secrets
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.actions import HEALTH_READS
from audit.archive import Archive, ArchiveConflict, ArchiveUnavailable, archive_from_settings
from audit.canonical import HASHED_FIELDS, canonical_bytes, event_document, event_hash, utc_iso
from audit.context import current_request_meta
from audit.models import GENESIS_HASH, NO_TENANT_CHAIN, AuditChain, AuditEvent, Outcome, chain_key
from tenants.context import current_tenant, tenant_context
from tenants.models import Tenant

logger = logging.getLogger(__name__)

NO_TENANT_GUC = "app.audit_chain"
PRUNE_GUC = "audit.prune"
USER_AGENT_MAX = 256
_UNSET: Any = object()
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_EMAIL = re.compile(r"[^\s@<>()\"',;:]+@[^\s@<>()\"',;:]+\.[A-Za-z]{2,}")
# Keys that name personal attributes (accounts.Member.PERSONAL_FIELDS and the login e-mail): their
# values are personal data whatever they contain, so they never go into an event.
PERSONAL_KEYS = frozenset(
    {
        "name",
        "kana_name",
        "email",
        "birth_date",
        "sex",
        "insurance_symbol",
        "insurance_number",
        "insurance_branch",
        "address",
        "phone",
    }
)


# Readers without checkup.view get these events' hash but not their target and details. Everything
# else in the hashed document is in the export or guessable and record ids are small, so the hash alone
# would give away which record was read (try ids until SHA-256 matches). A random 128-bit nonce in the
# details (withheld with them) makes that search hopeless; it is hashed and stored like any detail, so
# verify_audit and readers who see the details still recompute the hash. Events without one verify as before.
SALTED_ACTIONS = HEALTH_READS
NONCE_KEY = "nonce"
NONCE_BYTES = 16


class PersonalDataError(ValueError):
    """An event was about to carry something that looks like personal data. Names the key, never the value."""


# --- recording ------------------------------------------------------------------------------------


def record(
    *,
    action: str,
    outcome: str = Outcome.SUCCESS,
    target_type: str = "",
    target_id: int | str | None = None,
    details: dict[str, Any] | None = None,
    tenant: Tenant | None = _UNSET,
    actor: Any = _UNSET,
) -> AuditEvent:
    """Append one event to its tenant's chain, inside the caller's transaction.

    ``tenant`` defaults to the current tenant (``None`` = the tenant-less chain); ``actor`` and the
    request id, client address and user agent default to the current request's. Only pseudonymous ids
    go in: a details value that looks like an e-mail address, or a key naming a personal attribute,
    raises PersonalDataError. Reads of checkup results (HEALTH_READS) get a random ``nonce`` in details.
    """
    if not _ACTION.match(action):
        raise ValueError(f"audit action must be dotted lower-case words, e.g. auth.login.failed: {action!r}")
    if outcome not in Outcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    clean_details = _clean_details(details or {})
    if action in SALTED_ACTIONS:
        if NONCE_KEY in clean_details:
            raise ValueError(f"details[{NONCE_KEY!r}] of {action} is set by audit.record, not by its caller")
        clean_details[NONCE_KEY] = secrets.token_hex(NONCE_BYTES)
    target = "" if target_id is None else str(target_id)
    if _EMAIL.search(target):
        raise PersonalDataError("target_id looks like an e-mail address: record the primary key instead")
    meta = current_request_meta()
    if tenant is _UNSET:
        tenant = current_tenant()
    if actor is _UNSET:
        actor = meta.user if meta else None
    values: dict[str, Any] = {
        "tenant_id": tenant.pk if tenant is not None else None,
        "actor_id": actor.pk if actor is not None else None,
        "actor_role": getattr(actor, "role", "") if actor is not None else "",
        "action": action,
        "target_type": target_type,
        "target_id": target,
        "outcome": str(outcome),
        "client_ip": meta.client_ip if meta else "",
        "user_agent": meta.user_agent if meta else "",
        "request_id": meta.request_id if meta else "",
        "details": clean_details,
    }
    chain = chain_key(values["tenant_id"])
    with chain_scope(tenant):
        head = _lock_head(chain, tenant)
        # Taken under the lock, so times never run backwards along a chain.
        values.update(chain=chain, seq=head.seq + 1, occurred_at=timezone.now(), prev_hash=head.hash)
        values["hash"] = event_hash(event_document(values))
        event = AuditEvent(**values)
        event.save(force_insert=True)
        AuditChain.objects.filter(chain=chain).update(seq=event.seq, hash=event.hash)
    return event


def clean_user_agent(value: str) -> str:
    """Truncated, and with anything shaped like an e-mail address blanked (clients put them there)."""
    return _EMAIL.sub("[redacted]", value)[:USER_AGENT_MAX]


@contextmanager
def chain_scope(tenant: Tenant | None) -> Iterator[None]:
    """A transaction in which the application role may read and append to ``tenant``'s chain.

    Row-level security shows a tenant's audit rows under its app.tenant_id; the tenant-less chain only
    under app.audit_chain = '-', which is set here for this transaction and taken back afterwards.
    """
    if tenant is not None:
        current = current_tenant()
        if current is not None and current.pk == tenant.pk:
            # No savepoint: if recording fails, the caller's change must not commit without its event.
            with transaction.atomic(savepoint=False):
                yield
        else:
            with tenant_context(tenant):
                yield
        return
    with transaction.atomic(savepoint=False):
        previous = _set_local(NO_TENANT_GUC, NO_TENANT_CHAIN)
        try:
            yield
        finally:
            if connection.vendor == "postgresql" and not connection.needs_rollback:
                _set_local(NO_TENANT_GUC, previous)


def _set_local(name: str, value: str) -> str:
    if connection.vendor != "postgresql":
        return ""
    with connection.cursor() as cur:
        cur.execute("SELECT coalesce(current_setting(%s, true), ''), set_config(%s, %s, true)", [name, name, value])
        return cur.fetchone()[0]


def _lock_head(chain: str, tenant: Tenant | None) -> AuditChain:
    # FOR UPDATE queues concurrent appenders of this chain; on SQLite the IMMEDIATE transaction does.
    head = AuditChain.objects.select_for_update().filter(chain=chain).first()
    if head is None:
        AuditChain.objects.bulk_create([AuditChain(chain=chain, tenant=tenant)], ignore_conflicts=True)
        head = AuditChain.objects.select_for_update().get(chain=chain)
    return head


def _clean_details(details: dict[str, Any]) -> dict[str, Any]:
    _check_value(details, "details")
    # Round-trip so what we hash is exactly what the database hands back (tuples → lists …).
    return json.loads(canonical_bytes(details))


def _check_value(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: keys must be strings")
            if key.lower() in PERSONAL_KEYS:
                raise PersonalDataError(f"{path}[{key!r}] names a personal attribute: record ids, not personal data")
            _check_value(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]")
    elif isinstance(value, str):
        if _EMAIL.search(value):
            raise PersonalDataError(f"{path} looks like an e-mail address: record the user id instead")
    elif isinstance(value, float):
        # jsonb and Python print some floats differently, which would break the hash: use str or int.
        raise TypeError(f"{path}: floats are not allowed in audit details")
    elif not (value is None or isinstance(value, bool | int)):
        raise TypeError(f"{path}: {type(value).__name__} is not allowed in audit details")


# --- verification ---------------------------------------------------------------------------------

_VERIFY_BATCH = 10_000


@dataclass
class ChainReport:
    chain: str
    events: int = 0
    last_seq: int = 0
    broken_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def chain_keys(*, tenant: Tenant | None = None) -> list[str]:
    """Every chain in the database (all when ``tenant`` is None), from heads and events alike."""
    if tenant is not None:
        return [chain_key(tenant.pk)]
    keys = set(AuditChain.objects.values_list("chain", flat=True))
    with connection.cursor() as cur:
        cur.execute("SELECT DISTINCT chain FROM audit_auditevent")
        keys.update(row[0] for row in cur.fetchall())
    return sorted(keys, key=lambda k: (k != NO_TENANT_CHAIN, int(k) if k.isdigit() else 0))


# occurred_at as canonical text straight from the database: parsing a million datetimes only to print
# them again would be a third of the verification time.
_OCCURRED_TEXT = {
    "postgresql": "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    "sqlite": "CAST(occurred_at AS TEXT)",  # naive UTC, "YYYY-MM-DD HH:MM:SS[.ffffff]"
}


def _sqlite_utc_text(value: str) -> str:
    fraction = value[20:26] if len(value) > 19 else ""
    return f"{value[:10]}T{value[11:19]}.{fraction.ljust(6, '0')}Z"


def iter_chain_rows(chain: str, *, after_seq: int = 0, upto_seq: int | None = None) -> Iterator[dict[str, Any]]:
    """The chain's events in seq order as dicts of the hashed fields plus ``hash``, in keyset batches.

    ``occurred_at`` comes as canonical UTC text and ``details`` as a dict: ready for event_document.
    """
    names = ["hash", *HASHED_FIELDS]
    occurred = names.index("occurred_at")
    details = names.index("details")
    columns = ", ".join(_OCCURRED_TEXT[connection.vendor] if n == "occurred_at" else n for n in names)
    sqlite = connection.vendor == "sqlite"
    loads = json.loads
    upto_sql = "" if upto_seq is None else " AND seq <= %s"
    while True:
        params: list[Any] = [chain, after_seq] + ([] if upto_seq is None else [upto_seq])
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT {columns} FROM audit_auditevent WHERE chain = %s AND seq > %s{upto_sql} "  # noqa: S608
                f"ORDER BY seq LIMIT {_VERIFY_BATCH}",
                params,
            )
            rows = cur.fetchall()
        for row in rows:
            # names = ["hash", *HASHED_FIELDS]: one dict per row, built once (this loop runs a million times).
            values = dict(zip(names, row, strict=True))
            if sqlite:
                values["occurred_at"] = _sqlite_utc_text(row[occurred])
            raw = row[details]
            values["details"] = loads(raw) if isinstance(raw, str | bytes) else raw
            yield values
        if len(rows) < _VERIFY_BATCH:
            return
        after_seq = rows[-1][names.index("seq")]


def verify_chain(chain: str, *, archive: Archive | None = None) -> ChainReport:
    """Recompute one chain: report the first seq whose hash or link is wrong, a gap, or a head (or
    shipped head) that disagrees with the events.

    With an ``archive`` the head's shipping and pruning points are checked against the archived events
    too (the head row is in the database, where a rewritten one would otherwise set the anchor).
    """
    report = ChainReport(chain=chain)
    head = AuditChain.objects.filter(chain=chain).first()
    expected_seq = (head.pruned_seq if head else 0) + 1
    prev = head.pruned_hash if head else GENESIS_HASH
    shipped_seen = head is None or head.shipped_seq <= (head.pruned_seq if head else 0)
    report.last_seq = expected_seq - 1  # a chain pruned through its head verifies from its pruning point
    with connection.cursor() as cur:
        # Nothing below the pruning point (or at seq 0 or less): the walk starts above it and would not see it.
        cur.execute("SELECT min(seq) FROM audit_auditevent WHERE chain = %s AND seq <= %s", [chain, expected_seq - 1])
        below = cur.fetchone()[0]
    if below is not None:
        return _broken(report, below, "events at or below the pruning point")
    archived = ArchivedHead(seq=0, hashes={})
    if archive is not None and head is not None:
        try:
            archived = archived_head(archive, chain, also={head.shipped_seq, head.pruned_seq})
        except (ArchiveUnavailable, ArchiveConflict) as exc:
            return _broken(report, head.shipped_seq, f"archive unreadable ({type(exc).__name__})")
        problem = archived.disagreement(head)
        if problem:
            return _broken(report, *problem)
    for values in iter_chain_rows(chain, after_seq=expected_seq - 1):
        seq = values["seq"]
        if seq != expected_seq:
            return _broken(report, expected_seq, f"gap: seq {expected_seq}..{seq - 1} missing")
        if values["prev_hash"] != prev:
            return _broken(report, seq, "prev_hash does not match the previous event's hash")
        stored = values.pop("hash")
        recomputed = sha256(canonical_bytes(values)).hexdigest()  # values: exactly the hashed fields now
        values["hash"] = stored
        if recomputed != stored:
            return _broken(report, seq, "hash does not match the event's content")
        if head is not None and seq == head.shipped_seq:
            shipped_seen = True
            if values["hash"] != head.shipped_hash:
                return _broken(report, seq, "event differs from the shipped (archived) head")
        if seq == archived.seq and values["hash"] != archived.hashes.get(seq):
            return _broken(report, seq, "event differs from its archived copy")
        prev = values["hash"]
        report.events += 1
        report.last_seq = seq
        expected_seq += 1
    if head is None:
        problem = "chain has events but no head row" if report.events else "no such chain"
        return _broken(report, report.last_seq, problem)
    if head.seq != report.last_seq or head.hash != prev:
        missing = report.last_seq + 1 if head.seq > report.last_seq else head.seq
        return _broken(report, missing, f"head says seq {head.seq} but the events end at seq {report.last_seq}")
    if not shipped_seen:
        return _broken(report, head.shipped_seq, "shipped head points past the events")
    return report


_BATCH_NAME = re.compile(r"/(\d{12})-(\d{12})\.jsonl\.gz$")


@dataclass(frozen=True)
class ArchivedHead:
    """The newest archived seq of a chain, the archived hashes of that seq and of those asked for, and what
    is wrong with the archive itself, if anything: (seq, problem)."""

    seq: int
    hashes: dict[int, str]
    problem: tuple[int, str] | None = None

    def disagreement(self, head: AuditChain) -> tuple[int, str] | None:
        if self.problem:
            return self.problem
        if head.shipped_seq > self.seq:
            shipped = head.shipped_seq
            return self.seq + 1, f"head says shipped through seq {shipped} but the archive ends at seq {self.seq}"
        if self.seq > head.seq:
            return head.seq + 1, f"the archive holds events through seq {self.seq}, past the head ({head.seq})"
        for seq, kept, what in (
            (head.shipped_seq, head.shipped_hash, "shipped"),
            (head.pruned_seq, head.pruned_hash, "pruned"),
        ):
            if seq and self.hashes.get(seq) != kept:
                return seq, f"the {what} head differs from the archived event"
        return None


class _ArchiveBroken(Exception):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem


# An archived batch is at most AUDIT_SHIP_BATCH_SIZE events of a few hundred bytes: names claiming more, or
# bodies inflating past this, are refused before they are read into memory.
_BATCH_MAX_EVENTS = 1_000_000
_BATCH_MAX_BYTES = 256 * 2**20


class ArchivedChain:
    """One chain as the archive holds it, read by its batches' names and opened batch by batch on demand, each
    checked as it is opened: exactly the seqs its name says, each event matching its own hash and linked to
    the one before, and to the archived event before its first (from whichever batch holds it); two copies of
    one batch must be the same bytes, and batches that overlap (a shipper that died after writing a batch and
    wrote a longer one on its retry) must agree on every event they share. The batches must cover their range
    of seqs without a gap."""

    def __init__(self, archive: Archive, chain: str) -> None:
        self.archive = archive
        owner = "none" if chain == NO_TENANT_CHAIN else chain
        self.copies: dict[tuple[int, int], list[str]] = {}
        for key in archive.keys(f"audit/{owner}/"):
            if found := _BATCH_NAME.search(key):
                first, last = int(found[1]), int(found[2])
                if not 0 < first <= last or last - first >= _BATCH_MAX_EVENTS:
                    raise _ArchiveBroken(first, "an archived batch's name gives an impossible range")
                self.copies.setdefault((first, last), []).append(key)
        self.spans = sorted(self.copies)
        self.newest = max((last for _first, last in self.spans), default=0)
        self._opened: dict[tuple[int, int], tuple[dict[int, str], str]] = {}
        self._linked: set[tuple[int, int]] = set()
        covered = 0
        for first, last in self.spans:
            if covered and first > covered + 1:
                raise _ArchiveBroken(covered + 1, "archived batches leave a gap")
            covered = max(covered, last)

    def hash_of(self, seq: int) -> str:
        """The archived hash of ``seq``, from every batch that holds it (they must agree)."""
        return self.hashes(seq, seq)[seq]

    def hashes(self, first: int, last: int) -> dict[int, str]:
        """The archived hashes of ``first``..``last``, every batch holding any of them opened and checked."""
        found: dict[int, str] = {}
        for span in self.spans:
            if span[0] <= last and first <= span[1]:
                for seq, kept in self._events(span).items():
                    if first <= seq <= last and found.setdefault(seq, kept) != kept:
                        raise _ArchiveBroken(seq, "archived batches disagree on an event")
        if len(found) != last - first + 1:
            raise _ArchiveBroken(min(set(range(first, last + 1)) - found.keys()), "not in the archive")
        return found

    def _events(self, span: tuple[int, int]) -> dict[int, str]:
        """The batch's events, checked, and linked to the archived event before its first: read from the batch
        holding it, which is checked itself but not linked further back (one batch back, not the whole archive)."""
        if span not in self._linked:
            prev_hash = self._parsed(span)[1]
            first = span[0]
            before = [s for s in self.spans if s[0] <= first - 1 <= s[1]]
            if first == 1:
                linked = prev_hash == GENESIS_HASH
            else:  # the archive may begin later (batches past their retention): nothing to link to then
                linked = all(self._parsed(s)[0][first - 1] == prev_hash for s in before)
            if not linked:
                raise _ArchiveBroken(first, "an archived batch does not link to the event before it")
            self._linked.add(span)
        return self._parsed(span)[0]

    def _parsed(self, span: tuple[int, int]) -> tuple[dict[int, str], str]:
        if span not in self._opened:
            read = {self.archive.get(key) for key in self.copies[span]}
            if len(read) > 1:
                raise _ArchiveBroken(span[0], "two archived copies of one batch differ")
            self._opened[span] = _batch_events(read.pop(), span)
        return self._opened[span]


def archived_head(archive: Archive, chain: str, *, also: set[int] = frozenset()) -> ArchivedHead:
    """What the archive holds of a chain (``ArchivedChain``): its newest seq and the archived hashes of that
    seq and of ``also``, each batch opened for them checked, and the batch before it. So a batch added under
    another name, or one that holds less than its name says, cannot vouch for a head."""
    try:
        archived = ArchivedChain(archive, chain)
        if not archived.spans:
            return ArchivedHead(seq=0, hashes={})
        hashes = {seq: archived.hash_of(seq) for seq in {*also, archived.newest} if seq and seq <= archived.newest}
        return ArchivedHead(seq=archived.newest, hashes=hashes)
    except _ArchiveBroken as broken:
        return ArchivedHead(seq=0, hashes={}, problem=(broken.seq, broken.problem))


def _batch_events(data: bytes, span: tuple[int, int]) -> tuple[dict[int, str], str]:
    """The events of one archived batch as seq → hash, checked: exactly the seqs of ``span``, each matching its
    own hash and linked to the one before it; and the first one's prev_hash (linked by the caller)."""
    first, last = span
    try:
        inflate = zlib.decompressobj(wbits=31)  # gzip, inflated no further than a batch can be
        text = inflate.decompress(data, _BATCH_MAX_BYTES)
        if inflate.unconsumed_tail or not inflate.eof:
            raise _ArchiveBroken(first, "an archived batch is larger than any batch shipped, or cut short")
        lines = text.splitlines()
        if len(lines) != last - first + 1:
            raise _ArchiveBroken(first, "an archived batch does not hold the seqs its name says")
        events: dict[int, str] = {}
        expected = first_prev = None
        for seq, line in enumerate(lines, start=first):
            event = json.loads(line)
            kept = event.pop("hash")
            if event["seq"] != seq:
                raise _ArchiveBroken(first, "an archived batch does not hold the seqs its name says")
            if event_hash(event) != kept or (expected is not None and event["prev_hash"] != expected):
                raise _ArchiveBroken(seq, "an archived event does not match its hash or link")
            if first_prev is None:
                first_prev = event["prev_hash"]
            events[seq] = expected = kept
    except (zlib.error, ValueError, KeyError, TypeError, AttributeError, RecursionError, MemoryError) as exc:
        raise _ArchiveBroken(first, f"an archived batch cannot be read ({type(exc).__name__})") from None
    return events, first_prev


def _broken(report: ChainReport, seq: int, problem: str) -> ChainReport:
    report.broken_seq = seq
    report.problem = problem
    return report


def verify_all(*, tenant: Tenant | None = None, archive: Archive | None = None) -> list[ChainReport]:
    return [_verify_guarded(key, archive) for key in chain_keys(tenant=tenant)]


def _verify_guarded(chain: str, archive: Archive | None) -> ChainReport:
    """One chain's verification; an error nobody foresaw reports that chain broken instead of stopping the
    others' (its class only: texts of exceptions can carry data)."""
    try:
        return verify_chain(chain, archive=archive)
    except Exception as exc:
        logger.exception("audit verification of chain %s failed", chain)
        return _broken(ChainReport(chain=chain), 0, f"verification failed ({type(exc).__name__})")


# --- shipping -------------------------------------------------------------------------------------


@dataclass
class ShipReport:
    objects: list[str] = field(default_factory=list)
    events: int = 0
    failed_chains: list[str] = field(default_factory=list)


class ChainBrokenError(RuntimeError):
    """Shipping found events that do not chain onto the shipped head: verify_audit will say where."""


def object_key(chain: str, first: dict[str, Any], last: dict[str, Any]) -> str:
    """Deterministic: the same events always land under the same key, so a re-run never duplicates."""
    day = first["occurred_at"][:10].replace("-", "/")  # canonical UTC text: YYYY-MM-DD…
    owner = "none" if chain == NO_TENANT_CHAIN else chain
    return f"audit/{owner}/{day}/{first['seq']:012d}-{last['seq']:012d}.jsonl.gz"


def batch_body(rows: list[dict[str, Any]]) -> bytes:
    """gzip'd JSON Lines, one canonical event (with its hash) per line; mtime 0 so the bytes repeat."""
    lines = b"".join(canonical_bytes({**event_document(r), "hash": r["hash"]}) + b"\n" for r in rows)
    return gzip.compress(lines, mtime=0)


def ship_pending(*, archive: Archive | None = None, batch_size: int | None = None) -> ShipReport:
    """Write every chain's unshipped events to the archive, batch by batch, and move its progress.

    A chain whose archive write fails keeps its progress (nothing is dropped), gets an
    ``audit.ship_failed`` event, and ArchiveUnavailable is raised at the end so the task retries.
    """
    archive = archive or archive_from_settings()
    size = batch_size or settings.AUDIT_SHIP_BATCH_SIZE
    report = ShipReport()
    for tenant in [None, *Tenant.objects.order_by("pk")]:
        chain = chain_key(tenant.pk if tenant else None)
        try:
            while _ship_one_batch(tenant, chain, archive, size, report):
                pass
        except (ArchiveUnavailable, ArchiveConflict, ChainBrokenError) as exc:
            report.failed_chains.append(chain)
            # Error class only: exception texts of S3 clients can carry URLs and request details.
            logger.error("audit shipping failed for chain %s: %s", chain, type(exc).__name__)
            record(
                action="audit.ship_failed",
                outcome=Outcome.FAILURE,
                tenant=None,
                actor=None,
                target_type="audit_chain",
                target_id=chain,
                details={"error": type(exc).__name__},
            )
    if report.failed_chains:
        raise ArchiveUnavailable(f"audit shipping failed for chains {', '.join(report.failed_chains)}")
    return report


def _ship_one_batch(tenant: Tenant | None, chain: str, archive: Archive, size: int, report: ShipReport) -> bool:
    with chain_scope(tenant):
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                # One shipper per chain at a time; another one just skips this chain this round.
                cur.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [f"audit-ship:{chain}"])
                if not cur.fetchone()[0]:
                    return False
        head = AuditChain.objects.filter(chain=chain).first()
        if head is None or head.shipped_seq >= head.seq:
            return False
        rows = list(iter_chain_rows(chain, after_seq=head.shipped_seq, upto_seq=head.shipped_seq + size))
        prev, expected = head.shipped_hash, head.shipped_seq + 1
        for row in rows:
            if row["seq"] != expected or row["prev_hash"] != prev or event_hash(event_document(row)) != row["hash"]:
                raise ChainBrokenError(f"chain {chain} breaks at seq {expected}")
            prev, expected = row["hash"], expected + 1
        if not rows:
            return False
        first, last = rows[0], rows[-1]
        key = object_key(chain, first, last)
        archive.put_once(
            key,
            batch_body(rows),
            metadata={"chain": chain, "first-seq": str(first["seq"]), "last-seq": str(last["seq"]), "last-hash": prev},
        )
        AuditChain.objects.filter(chain=chain, shipped_seq=head.shipped_seq).update(
            shipped_seq=last["seq"], shipped_hash=last["hash"], shipped_at=timezone.now()
        )
    report.objects.append(key)
    report.events += len(rows)
    return True


# --- retention ------------------------------------------------------------------------------------


@dataclass
class PruneResult:
    chain: str
    through_seq: int = 0
    deleted: int = 0
    refused: str = ""


def months_before(moment: dt.datetime, months: int) -> dt.datetime:
    month_index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month])
    return moment.replace(year=year, month=month + 1, day=day)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def prune_expired(
    *, now: dt.datetime | None = None, dry_run: bool = False, archive: Archive | None = None
) -> list[PruneResult]:
    """Delete events older than AUDIT_RETENTION_MONTHS that are shipped and whose chain verifies,
    the archive included: only what the archive demonstrably holds goes.

    Operator-only: on PostgreSQL the triggers let the table owner delete, with audit.prune set in the
    transaction, rows at or below both the shipped and the pruning point, and nothing else. The chain
    row keeps the seq and hash of the last pruned event, so verification continues from there.
    """
    cutoff = months_before(now or timezone.now(), settings.AUDIT_RETENTION_MONTHS)
    archive = archive or archive_from_settings()
    results = []
    for chain in chain_keys():
        result = PruneResult(chain=chain)
        results.append(result)
        report = _verify_guarded(chain, archive)
        if not report.ok:
            result.refused = f"chain does not verify at seq {report.broken_seq}"
            continue
        head = AuditChain.objects.get(chain=chain)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT seq, hash FROM audit_auditevent WHERE chain = %s AND seq <= %s AND occurred_at < %s "
                "ORDER BY seq DESC LIMIT 1",
                [chain, head.shipped_seq, cutoff],
            )
            found = cur.fetchone()
        if found is None:
            continue
        result.through_seq = found[0]
        problem = _unarchived(archive, chain, head.pruned_seq + 1, found[0])
        if problem:
            result.refused = problem
            continue
        if dry_run:
            continue
        with transaction.atomic():
            _set_local(PRUNE_GUC, "on")
            AuditChain.objects.filter(chain=chain).update(pruned_seq=found[0], pruned_hash=found[1])
            with connection.cursor() as cur:
                cur.execute("DELETE FROM audit_auditevent WHERE chain = %s AND seq <= %s", [chain, found[0]])
                result.deleted = cur.rowcount
            _set_local(PRUNE_GUC, "")
        record(
            action="audit.pruned",
            tenant=None,
            actor=None,
            target_type="audit_chain",
            target_id=chain,
            details={"through_seq": found[0], "deleted": result.deleted},
        )
    return results


def verify_archive_fully(chain: str, archive: Archive) -> ChainReport:
    """Every archived batch of the chain opened and checked as a chain (``ArchivedChain``), and each archived
    event still in the database compared with it: ``verify_audit --full-archive``, for an auditor who wants the
    whole archive read, not only the batches that anchor the head."""
    report = ChainReport(chain=chain)
    try:
        archived = ArchivedChain(archive, chain)
        if not archived.spans:
            return report
        problem = _unarchived(archive, chain, archived.spans[0][0], archived.newest, archived=archived)
    except _ArchiveBroken as broken:
        return _broken(report, broken.seq, broken.problem)
    except (ArchiveUnavailable, ArchiveConflict) as exc:
        return _broken(report, 0, f"archive unreadable ({type(exc).__name__})")
    if problem:
        return _broken(report, 0, problem)
    report.events, report.last_seq = archived.newest - archived.spans[0][0] + 1, archived.newest
    return report


def _unarchived(archive: Archive, chain: str, first: int, last: int, *, archived: ArchivedChain | None = None) -> str:
    """Why events ``first``..``last`` may not be deleted: some are not in the archive as they are here ('' when
    every one is). Every batch holding them is opened and checked, not only those verification reads: after
    pruning the archive is their only record."""
    try:
        archived_hashes = (archived or ArchivedChain(archive, chain)).hashes(first, last)
    except _ArchiveBroken as broken:
        return f"the archive does not hold seq {broken.seq} as shipped: {broken.problem}"
    except (ArchiveUnavailable, ArchiveConflict) as exc:
        return f"archive unreadable ({type(exc).__name__})"
    with connection.cursor() as cur:
        cur.execute(
            "SELECT seq, hash FROM audit_auditevent WHERE chain = %s AND seq BETWEEN %s AND %s", [chain, first, last]
        )
        for seq, kept in cur.fetchall():
            if archived_hashes.get(seq) != kept:
                return f"the archive does not hold seq {seq} as it is here"
    return ""


# --- disclosure export ----------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "occurred_at_jst",
    "occurred_at_utc",
    "seq",
    "action",
    "outcome",
    "actor_id",
    "actor_role",
    "target_type",
    "target_id",
    "client_ip",
    "request_id",
    "details",
    "prev_hash",
    "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """A cell a spreadsheet will not run: formula-like text gets a leading quote (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


@dataclass(frozen=True)
class ExportFile:
    filename: str
    content_type: str
    body: bytes
    events: int


def export_events(*, user, since: dt.date, until: dt.date, fmt: str) -> ExportFile:
    """The viewer's tenant's events of a period as CSV or JSON Lines, itself recorded as audit.exported.

    The file carries each event's seq and hashes so the recipient can check it against the chain.
    """
    import csv
    import io

    from audit.selectors import JST, events_for_export

    rows = []
    for event in events_for_export(user=user, since=since, until=until):
        rows.append(
            {
                "occurred_at_jst": event.occurred_at.astimezone(JST).isoformat(timespec="seconds"),
                "occurred_at_utc": utc_iso(event.occurred_at),
                "seq": event.seq,
                "action": event.action,
                "outcome": event.outcome,
                "actor_id": event.actor_id,
                "actor_role": event.actor_role,
                "target_type": event.target_type,
                "target_id": event.target_id,
                "client_ip": event.client_ip,
                "request_id": event.request_id,
                "details": event.details,
                "prev_hash": event.prev_hash,
                "hash": event.hash,
            }
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        for row in rows:
            cells = [json.dumps(row[c], ensure_ascii=False) if c == "details" else row[c] for c in EXPORT_COLUMNS]
            writer.writerow([csv_safe("" if cell is None else str(cell)) for cell in cells])
        body = buffer.getvalue().encode("utf-8-sig")  # BOM: Excel in Japan opens it as UTF-8
        content_type = "text/csv; charset=utf-8"
    elif fmt == "jsonl":
        body = b"".join(canonical_bytes(row) + b"\n" for row in rows)
        content_type = "application/x-ndjson"
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    record(
        action="audit.exported",
        target_type="audit_log",
        details={"format": fmt, "since": since.isoformat(), "until": until.isoformat(), "events": len(rows)},
    )
    filename = f"audit-{since:%Y%m%d}-{until:%Y%m%d}.{fmt}"
    return ExportFile(filename=filename, content_type=content_type, body=body, events=len(rows))
