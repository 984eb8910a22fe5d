from dataclasses import asdict

from accounts.selectors import roster_summary
from tenants.tasks import tenant_task


@tenant_task()
def roster_summary_task(tenant) -> dict:
    """Counts of the tenant's roster, computed on a worker."""
    return asdict(roster_summary())
