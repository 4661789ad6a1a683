"""pgmig-citus: Citus distributed and reference tables as pgmig schema objects.

    from pgmig_citus import distributed, reference
    distributed(Order, "tenant_id", shard_count=16)
    distributed(OrderLine, "tenant_id", colocate_with=Order)
    reference(Country)

Importing this package registers its operations, which is why revision
files that distribute tables start with `import pgmig_citus`.
"""

from __future__ import annotations

from . import ops
from .declare import TableDistribution, distributed, reference
from .handler import Distribution, DistributionHandler

__all__ = ["Distribution", "DistributionHandler", "TableDistribution", "distributed", "ops", "reference"]
