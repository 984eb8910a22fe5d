from accounts import policy


def access(request) -> dict:
    """The permissions of the logged-in user, for showing only the menu entries they can open; none and
    ``mfa_pending`` while a second factor is still due (MfaRequiredMiddleware)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.tenant_id is None or getattr(request, "mfa_pending", False):
        return {"app_perms": set(), "mfa_pending": getattr(request, "mfa_pending", False)}
    # The tenant's kind: some duties are an employer's alone (就業判定, 労働安全衛生法66条の4), not an insurer's.
    return {"app_perms": policy.permissions(user), "tenant_wide_perms": policy.tenant_wide_permissions(user),
            "tenant_kind": user.tenant.kind}  # fmt: skip
