from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.models import Department, Office, Tenant, TenantScopedModel


class Role(models.TextChoices):
    EMPLOYEE = "employee", _("従業員・加入者")
    PHYSICIAN = "physician", _("産業医")
    HEALTH_STAFF = "health_staff", _("保健師・衛生管理者")
    HR_ADMIN = "hr_admin", _("人事担当者")
    INSURER_ADMIN = "insurer_admin", _("健保担当者")
    ORG_ADMIN = "org_admin", _("組織管理者")
    OPERATOR = "operator", _("運用担当者")


PRIVILEGED_ROLES = frozenset(Role.values) - {Role.EMPLOYEE}
ADMIN_ROLES = frozenset({Role.HR_ADMIN, Role.INSURER_ADMIN, Role.ORG_ADMIN})


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(role=Role.OPERATOR, tenant=None, is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A login. The user table is the global login directory (it is read before any tenant is known),
    so it holds no personal data beyond the e-mail address; the person is the tenant's Member."""

    email = models.EmailField(_("メールアドレス"), unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    role = models.CharField(_("ロール"), max_length=20, choices=Role.choices, default=Role.EMPLOYEE)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("ユーザー")
        verbose_name_plural = _("ユーザー")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=(models.Q(role="operator") & models.Q(tenant__isnull=True))
                | (~models.Q(role="operator") & models.Q(tenant__isnull=False)),
                name="user_operator_has_no_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"User #{self.pk}"

    @property
    def is_privileged(self) -> bool:
        return self.role in PRIVILEGED_ROLES

    @property
    def is_tenant_admin(self) -> bool:
        return self.role in ADMIN_ROLES


class Member(TenantScopedModel):
    """A person on the tenant's roster (被保険者・被扶養者・従業員).

    Personal fields are listed in PERSONAL_FIELDS: they never go to logs, audit events, __str__ or
    error messages (the personal-data issue encrypts them at rest).
    """

    class Relationship(models.TextChoices):
        SELF = "self", _("本人")
        FAMILY = "family", _("家族")

    class Sex(models.TextChoices):
        MALE = "male", _("男性")
        FEMALE = "female", _("女性")

    PERSONAL_FIELDS = (
        "name",
        "kana_name",
        "birth_date",
        "sex",
        "insurance_symbol",
        "insurance_number",
        "address",
        "phone",
    )

    user = models.OneToOneField(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="member")
    employee_number = models.CharField(_("社員番号"), max_length=32, null=True, blank=True)  # noqa: DJ001
    office = models.ForeignKey(Office, on_delete=models.PROTECT, null=True, blank=True, related_name="members")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, null=True, blank=True, related_name="members")
    relationship = models.CharField(_("続柄"), max_length=8, choices=Relationship.choices, default=Relationship.SELF)
    qualification_end = models.DateField(_("資格喪失日"), null=True, blank=True)
    is_active = models.BooleanField(default=True)

    name = models.CharField(_("氏名"), max_length=100)
    kana_name = models.CharField(_("フリガナ"), max_length=100, blank=True)
    birth_date = models.DateField(_("生年月日"), null=True, blank=True)
    sex = models.CharField(_("性別"), max_length=8, choices=Sex.choices, blank=True)
    insurance_symbol = models.CharField(_("保険者記号"), max_length=20, blank=True)
    insurance_number = models.CharField(_("保険者番号"), max_length=20, blank=True)
    address = models.CharField(_("住所"), max_length=300, blank=True)
    phone = models.CharField(_("電話番号"), max_length=30, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("名簿")
        verbose_name_plural = _("名簿")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "employee_number"],
                condition=models.Q(employee_number__isnull=False),
                name="member_unique_employee_number",
            )
        ]
        indexes = [models.Index(fields=["tenant", "department"]), models.Index(fields=["tenant", "office"])]

    def __str__(self) -> str:
        return f"Member #{self.pk}"

    def __repr__(self) -> str:
        return f"<Member #{self.pk} tenant={self.tenant_id}>"
