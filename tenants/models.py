from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.context import CrossTenantError, current_tenant, require_tenant


class Tenant(models.Model):
    """A customer: a company or a health-insurance association (健保). The registry of tenants is
    global (looked up at login, before any tenant is current), so it is not row-level secured."""

    class Kind(models.TextChoices):
        COMPANY = "company", _("企業")
        INSURER = "insurer", _("健康保険組合")

    class Status(models.TextChoices):
        ACTIVE = "active", _("契約中")
        SUSPENDED = "suspended", _("停止中")
        TERMINATED = "terminated", _("契約終了")

    kind = models.CharField(_("種別"), max_length=16, choices=Kind.choices)
    name = models.CharField(_("名称"), max_length=200)
    slug = models.SlugField(_("識別子"), max_length=50, unique=True)
    contract_start = models.DateField(_("契約開始日"), default=timezone.localdate)
    contract_end = models.DateField(_("契約終了日"), null=True, blank=True)
    status = models.CharField(_("状態"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("テナント")
        verbose_name_plural = _("テナント")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(contract_end__isnull=True) | models.Q(contract_end__gte=models.F("contract_start")),
                name="tenant_contract_end_after_start",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class TenantManager(models.Manager):
    """Rows of the current tenant only; raises NoTenantError when no tenant is current."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(tenant=require_tenant())

    def bulk_create(self, objs, *args, **kwargs):
        tenant = require_tenant()
        for obj in objs:
            obj._bind_tenant(tenant)
        return super().bulk_create(objs, *args, **kwargs)


class TenantScopedModel(models.Model):
    """Base of every tenant-owned table.

    ``objects`` fails closed without a current tenant; ``all_tenants`` is the explicit, greppable
    escape hatch for operator code. On PostgreSQL the table also gets row-level security (tenants.rls).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", editable=False)

    objects = TenantManager()
    all_tenants = models.Manager()  # noqa: DJ012  (objects must stay first: it is the default manager)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        tenant = current_tenant()
        if tenant is None:
            require_tenant()  # raises: writes happen inside a tenant context only
        self._bind_tenant(tenant)
        super().save(*args, **kwargs)

    def _bind_tenant(self, tenant: Tenant) -> None:
        if self.tenant_id is None:
            self.tenant = tenant
        elif self.tenant_id != tenant.pk:
            raise CrossTenantError(f"{type(self).__name__} belongs to another tenant than the current one")


class Office(TenantScopedModel):
    """事業所."""

    name = models.CharField(_("事業所名"), max_length=200)
    code = models.CharField(_("事業所コード"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("事業所")
        verbose_name_plural = _("事業所")
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="office_unique_name")]

    def __str__(self) -> str:
        return self.name


class Department(TenantScopedModel):
    """部署, inside one office."""

    office = models.ForeignKey(Office, on_delete=models.PROTECT, related_name="departments")
    name = models.CharField(_("部署名"), max_length=200)

    class Meta:
        verbose_name = _("部署")
        verbose_name_plural = _("部署")
        constraints = [models.UniqueConstraint(fields=["tenant", "office", "name"], name="department_unique_name")]

    def __str__(self) -> str:
        return self.name
