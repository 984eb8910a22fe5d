from accounts import policy


def access(request) -> dict:
    """The permissions of the logged-in user, for showing only the menu entries they can open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.tenant_id is None:
        return {"app_perms": set()}
    return {"app_perms": policy.permissions(user)}
