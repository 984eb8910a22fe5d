"""IP-address allowlists (MISSION A6): per tenant, CIDR entries (IPv4 and IPv6), applied to every role
except employees. An empty list means no restriction."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

import audit
from tenants.context import require_tenant
from tenants.models import IpAllowlistEntry

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ENTRIES = 200


def allowlist_applies_to(user) -> bool:
    """Every tenant user other than an employee, and an employee holding a label over others' data, is
    bound to the tenant's allowlist."""
    from accounts import policy

    return user.tenant_id is not None and policy.privileged(user)


def allowlist_can_manage(user) -> bool:
    """Who edits the allowlist and the tenant's security settings: holders of access.manage over the whole
    tenant (both bind everyone in it)."""
    from accounts import policy
    from accounts.labels import Perm

    return policy.can_tenant_wide(user, Perm.ACCESS_MANAGE)


def allowlist_networks() -> list[Network]:
    """The current tenant's networks (raises without a tenant)."""
    return [ipaddress.ip_network(cidr) for cidr in IpAllowlistEntry.objects.values_list("cidr", flat=True)]


def address_permitted(address: str, networks: list[Network]) -> bool:
    """True when ``networks`` is empty (no restriction) or contains ``address``; an unparsable address
    is never permitted by a non-empty list."""
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:192.0.2.1 is the IPv4 client behind a dual-stack socket
    return any(ip.version == net.version and ip in net for net in networks)


def parse_networks(text: str) -> list[Network]:
    """One CIDR (or single address) per line; ``#`` starts a comment. Raises ValidationError naming
    the offending line."""
    networks: list[Network] = []
    errors: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        value = raw.split("#", 1)[0].strip()
        if not value:
            continue
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError:
            try:
                suggestion = ipaddress.ip_network(value, strict=False)
            except ValueError:
                errors.append(
                    _("%(line)d行目: 「%(value)s」はIPアドレスまたはCIDRではありません。")
                    % {"line": number, "value": value[:60]}
                )
                continue
            errors.append(
                _("%(line)d行目: ホスト部が0ではありません。%(net)s のことですか？")
                % {"line": number, "net": suggestion}
            )
            continue
        if network not in networks:
            networks.append(network)
    if len(networks) > MAX_ENTRIES:
        errors.append(_("登録できるのは%(max)d件までです。") % {"max": MAX_ENTRIES})
    if errors:
        raise ValidationError(errors)
    return networks


@dataclass(frozen=True)
class AllowlistChange:
    saved: bool
    excludes_own_address: bool


@transaction.atomic
def allowlist_replace(*, networks: list[Network], own_address: str, confirmed: bool) -> AllowlistChange:
    """Replace the current tenant's list. A list that would lock out the admin's own address is not
    saved unless ``confirmed`` (the page asks first)."""
    tenant = require_tenant()
    excludes_own = bool(networks) and not address_permitted(own_address, networks)
    if excludes_own and not confirmed:
        return AllowlistChange(saved=False, excludes_own_address=True)
    before = {str(net) for net in allowlist_networks()}
    after = [str(net) for net in networks]
    IpAllowlistEntry.objects.all().delete()
    IpAllowlistEntry.objects.bulk_create([IpAllowlistEntry(cidr=cidr) for cidr in after])
    audit.record(
        action="tenant.allowlist.changed",
        target_type="tenant",
        target_id=tenant.pk,
        details={
            "added": sorted(set(after) - before),
            "removed": sorted(before - set(after)),
            "entries": len(after),
            "excludes_own_address": excludes_own,
        },
    )
    return AllowlistChange(saved=True, excludes_own_address=excludes_own)


def allowlist_record_denial(*, user, area: str) -> None:
    """Audit a refused request (the client address comes from the request via audit.record)."""
    audit.record(
        action="tenant.allowlist.denied",
        outcome="denied",
        target_type="user",
        target_id=user.pk,
        details={"area": area},
    )
