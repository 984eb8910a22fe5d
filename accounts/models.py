from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from healthapp.crypto.blind_index import blind_index, insurance_card_index
from healthapp.crypto.fields import EncryptedDateField, EncryptedTextField
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

    Personal fields are encrypted at rest (healthapp.crypto.fields) and found through blind indexes
    (``*_index``); they never go to logs, audit events, __str__ or error messages. ``uid`` is the
    pseudonymous id other data (checkups, audit events) refers to.
    """

    class Relationship(models.TextChoices):
        SELF = "self", _("本人")
        FAMILY = "family", _("家族")

    class Sex(models.TextChoices):
        MALE = "male", _("男性")
        FEMALE = "female", _("女性")

    PERSONAL_FIELDS = (
        "employee_number", "name", "kana_name", "birth_date", "sex", "insurance_symbol", "insurance_number",
        "address", "phone",
    )  # fmt: skip

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.OneToOneField(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="member")
    office = models.ForeignKey(Office, on_delete=models.PROTECT, null=True, blank=True, related_name="members")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, null=True, blank=True, related_name="members")
    relationship = models.CharField(_("続柄"), max_length=8, choices=Relationship.choices, default=Relationship.SELF)
    qualification_end = models.DateField(_("資格喪失日"), null=True, blank=True)
    is_active = models.BooleanField(default=True)

    employee_number = EncryptedTextField(_("社員番号"), null=True, blank=True)
    name = EncryptedTextField(_("氏名"))
    kana_name = EncryptedTextField(_("フリガナ"), default="", blank=True)
    birth_date = EncryptedDateField(_("生年月日"), null=True, blank=True)
    sex = EncryptedTextField(_("性別"), choices=Sex.choices, default="", blank=True)
    insurance_symbol = EncryptedTextField(_("保険者記号"), default="", blank=True)
    insurance_number = EncryptedTextField(_("保険者番号"), default="", blank=True)
    address = EncryptedTextField(_("住所"), default="", blank=True)
    phone = EncryptedTextField(_("電話番号"), default="", blank=True)

    employee_number_index = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    name_index = models.CharField(max_length=64, blank=True, editable=False)
    insurance_card_index = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("名簿")
        verbose_name_plural = _("名簿")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "employee_number_index"],
                condition=models.Q(employee_number_index__isnull=False),
                name="member_unique_employee_number",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "department"]),
            models.Index(fields=["tenant", "office"]),
            models.Index(fields=["tenant", "name_index"]),
            models.Index(fields=["tenant", "insurance_card_index"]),
        ]

    def __str__(self) -> str:
        return f"Member #{self.pk}"

    def __repr__(self) -> str:
        return f"<Member #{self.pk} tenant={self.tenant_id}>"

    _INDEXED = frozenset(
        {"employee_number", "name", "insurance_symbol", "insurance_number", "relationship", "sex", "birth_date"}
    )

    def before_save(self, *, update_fields=None) -> tuple[str, ...]:
        if update_fields is not None and not self._INDEXED & set(update_fields):
            return ()
        tenant_id = self.tenant_id
        self.employee_number_index = (
            blind_index(tenant_id, "employee-number", self.employee_number) if self.employee_number else None
        )
        self.name_index = blind_index(tenant_id, "name", self.name, kana=True) if self.name else ""
        card = (self.insurance_symbol, self.insurance_number, self.sex, self.birth_date)
        self.insurance_card_index = (
            insurance_card_index(
                tenant_id,
                symbol=self.insurance_symbol,
                number=self.insurance_number,
                relationship=self.relationship,
                sex=self.sex,
                birth_year_month=f"{self.birth_date.year:04d}-{self.birth_date.month:02d}",
            )
            if all(card)
            else None
        )
        return ("employee_number_index", "name_index", "insurance_card_index")
