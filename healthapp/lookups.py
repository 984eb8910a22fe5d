"""``field__any=[…]``: membership in a list sent as one array parameter on PostgreSQL.

Django's ``__in`` renders one placeholder per value and prepares each value on its own, which costs
the roster import more than the lookup itself for a thousand blind-index keys per chunk. Other
databases get the plain ``IN (…)``.
"""

from __future__ import annotations

from django.db.models import CharField, Lookup


@CharField.register_lookup
class Any(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [str(v) for v in self.rhs]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]
