"""The audit log: append-only events, hash-chained per tenant, and one head row per chain.

Both tables are created by migration 0001 and then marked ``managed = False``: Django's ``flush``
(run by every transactional test, and a foot-gun in production) erases only managed tables, so it can
never wipe the audit log. A schema change to these tables therefore needs explicit SQL in a migration.
The tenant is a foreign key *without* a database constraint: events outlive a purged tenant
(MISSION T3: "except inseparable logs").
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from tenants.models import Tenant

GENESIS_HASH = "0" * 64
NO_TENANT_CHAIN = "-"


def chain_key(tenant_id: int | None) -> str:
    """The chain an event of ``tenant_id`` belongs to: the tenant's id, or "-" for none."""
    return NO_TENANT_CHAIN if tenant_id is None else str(tenant_id)


class Outcome(models.TextChoices):
    SUCCESS = "success", _("成功")
    FAILURE = "failure", _("失敗")
    DENIED = "denied", _("拒否")


class AuditEvent(models.Model):
    """One recorded action. Never updated or deleted (database triggers refuse it); pseudonymous ids only."""

    # Rows of these models may never be updated or deleted by the application role (tenants.rls).
    append_only = True

    chain = models.CharField(max_length=24, editable=False)
    seq = models.BigIntegerField(editable=False)
    occurred_at = models.DateTimeField(_("日時"), editable=False)
    # Indexed through the viewer index (tenant, occurred_at, id), which leads with it.
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        editable=False,
    )
    actor_id = models.BigIntegerField(_("操作者"), null=True, editable=False)
    actor_role = models.CharField(_("ロール"), max_length=20, blank=True, editable=False)
    action = models.CharField(_("操作"), max_length=64, editable=False)
    target_type = models.CharField(_("対象の種類"), max_length=64, blank=True, editable=False)
    target_id = models.CharField(_("対象ID"), max_length=64, blank=True, editable=False)
    outcome = models.CharField(_("結果"), max_length=16, choices=Outcome.choices, editable=False)
    client_ip = models.CharField(_("IPアドレス"), max_length=45, blank=True, editable=False)
    user_agent = models.CharField(max_length=256, blank=True, editable=False)
    request_id = models.CharField(_("リクエストID"), max_length=64, blank=True, editable=False)
    details = models.JSONField(_("詳細"), default=dict, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        managed = False
        verbose_name = _("監査ログ")
        verbose_name_plural = _("監査ログ")
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_event_chain_seq_unique")]
        indexes = [models.Index(fields=["tenant", "occurred_at", "id"], name="audit_event_viewer_idx")]

    def __str__(self) -> str:
        return f"AuditEvent {self.chain}#{self.seq} {self.action}"


class AuditChain(models.Model):
    """The head of one chain (its last seq and hash), its shipping progress and its pruning point.

    Appends lock this row (SELECT … FOR UPDATE), so concurrent writers of one tenant queue up and the
    chain never forks; different tenants never wait on each other.
    """

    chain = models.CharField(max_length=24, primary_key=True)
    tenant = models.ForeignKey(Tenant, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    shipped_seq = models.BigIntegerField(default=0)
    shipped_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    shipped_at = models.DateTimeField(null=True)
    # Events up to pruned_seq were deleted (after shipping); pruned_hash is the hash of the last one.
    pruned_seq = models.BigIntegerField(default=0)
    pruned_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        managed = False

    def __str__(self) -> str:
        return f"AuditChain {self.chain}@{self.seq}"
