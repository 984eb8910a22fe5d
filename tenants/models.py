from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from tenants.context import CrossTenantError, require_tenant


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
    # 保険者番号 of an insurer tenant: when set, checkup files of another insurer are refused per person.
    insurer_number = models.CharField(pgettext_lazy("insurer", "保険者番号"), max_length=8, blank=True)
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


class _SameTenant:
    """A relation from one tenant's row to another row of the same tenant (a tenant-scoped model, or a
    login of ``accounts.User``). On PostgreSQL the database holds it as ``(tenant_id, <column>) → target
    (tenant_id, id)`` (tenants.keys, after every migrate), so a row can only refer to a row of its own
    tenant: row-level security checks a row's own tenant_id, and PostgreSQL's foreign-key checks ignore
    policies. Django's single-column constraint is left out (``db_constraint=False``): the composite key
    checks existence too. On SQLite only Django's relation applies."""

    def __init__(self, *args, within: str | None = None, **kwargs) -> None:
        kwargs["db_constraint"] = False
        # ``within``: another relation of the row that the target shares (a department is within an office):
        # the key becomes (tenant_id, <that column>, <column>) → target (tenant_id, <its column>, id), and the
        # other relation's own key is checked only on rows without this one (tenants.keys). Database only.
        self.within = within
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("db_constraint", None)
        return name, path, args, kwargs


class SameTenantForeignKey(_SameTenant, models.ForeignKey):
    __doc__ = _SameTenant.__doc__


class SameTenantOneToOneField(_SameTenant, models.OneToOneField):
    __doc__ = _SameTenant.__doc__


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
        # Writes happen inside a tenant context only (require_tenant raises otherwise).
        self._bind_tenant(require_tenant())
        derived = self.before_save(update_fields=kwargs.get("update_fields"))
        if kwargs.get("update_fields") is not None and derived:
            kwargs["update_fields"] = {*kwargs["update_fields"], *derived}
        super().save(*args, **kwargs)

    def before_save(self, *, update_fields=None) -> tuple[str, ...]:
        """Hook for derived columns (e.g. blind indexes), run once the tenant is bound; returns the
        names of the columns it set, so a ``save(update_fields=…)`` writes them too."""
        return ()

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

    office = SameTenantForeignKey(Office, on_delete=models.PROTECT, related_name="departments")
    name = models.CharField(_("部署名"), max_length=200)

    class Meta:
        verbose_name = _("部署")
        verbose_name_plural = _("部署")
        constraints = [models.UniqueConstraint(fields=["tenant", "office", "name"], name="department_unique_name")]

    def __str__(self) -> str:
        return self.name


class TenantKey(TenantScopedModel):
    """A tenant's key, wrapped under the master key (healthapp.crypto.keyring).

    ``data`` keys encrypt field values and are versioned (rotation adds a version; old versions stay
    readable); the ``index`` key seeds the blind indexes. Destroying them (crypto-shredding) leaves
    every encrypted value of the tenant unreadable, in the database and in every backup.
    """

    class Purpose(models.TextChoices):
        DATA = "data", _("データ暗号鍵")
        INDEX = "index", _("検索用索引鍵")

    class State(models.TextChoices):
        ACTIVE = "active", _("使用中")
        RETIRED = "retired", _("復号のみ")
        DESTROYED = "destroyed", _("破棄済み")

    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField(null=True)
    kek_id = models.CharField(max_length=100)
    state = models.CharField(max_length=12, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("テナント鍵")
        verbose_name_plural = _("テナント鍵")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "purpose", "version"], name="tenantkey_unique_version"),
            models.UniqueConstraint(
                fields=["tenant", "purpose"], condition=models.Q(state="active"), name="tenantkey_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"TenantKey {self.tenant_id}/{self.purpose}/v{self.version} ({self.state})"


class TenantSecurityPolicy(TenantScopedModel):
    """A tenant's sign-in rules (one row per tenant; a missing row means the defaults)."""

    class RegistrationAttribute(models.TextChoices):
        KANA_NAME = "kana_name", _("フリガナ")
        PHONE = "phone", _("電話番号")
        INSURANCE_NUMBER = "insurance_number", _("保険証の番号")

    mfa_required_for_all = models.BooleanField(_("全員に多要素認証を必須にする"), default=False)
    registration_attribute = models.CharField(
        _("従業員登録の確認項目"),
        max_length=20,
        choices=RegistrationAttribute.choices,
        default=RegistrationAttribute.KANA_NAME,
        help_text=_("社員番号・生年月日に加えて、従業員が自己登録時に入力する名簿の項目です。"),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("セキュリティ設定")
        verbose_name_plural = _("セキュリティ設定")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="tenantsecuritypolicy_one_per_tenant")]

    def __str__(self) -> str:
        return f"TenantSecurityPolicy {self.tenant_id}"


class IpAllowlistEntry(TenantScopedModel):
    """One network (CIDR, IPv4 or IPv6) from which the tenant's non-employee users may work.
    A tenant without entries has no address restriction."""

    cidr = models.CharField(_("許可するネットワーク"), max_length=49)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("IPアドレス許可リスト")
        verbose_name_plural = _("IPアドレス許可リスト")
        constraints = [models.UniqueConstraint(fields=["tenant", "cidr"], name="ipallowlistentry_unique_cidr")]

    def __str__(self) -> str:
        return self.cidr


class PendingRegistration(TenantScopedModel):
    """A self-registration waiting for its e-mail confirmation. Only a hash of the link's secret is
    stored; ``used_at`` makes the link single-use, ``expires_at`` makes it expire."""

    member_uid = models.UUIDField()
    email = models.EmailField()
    password_hash = models.CharField(max_length=256)
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("登録確認待ち")
        verbose_name_plural = _("登録確認待ち")
        indexes = [models.Index(fields=["tenant", "member_uid"])]

    def __str__(self) -> str:
        return f"PendingRegistration #{self.pk}"
