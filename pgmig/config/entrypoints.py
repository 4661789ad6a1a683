"""Finding entry points (reading metadata) apart from loading them (importing code).

Listing what is installed never imports a plugin, so `pgmig plugins` and
`--help` stay fast and a broken plugin cannot stop discovery of the others.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, List, Optional

if sys.version_info >= (3, 10):
    from importlib.metadata import EntryPoint, entry_points
else:  # pragma: no cover
    from importlib_metadata import EntryPoint, entry_points

REGISTRIES_GROUP = "pgmig.registries"
OBJECT_TYPES_GROUP = "pgmig.object_types"


@dataclass(frozen=True)
class Found:
    """One entry point, with the distribution that declared it."""

    group: str
    name: str
    value: str
    package: str
    version: str
    entry_point: Optional[EntryPoint] = None

    @property
    def provider(self) -> str:
        return f"{self.package} {self.version}".strip()

    def load(self) -> Any:
        assert self.entry_point is not None
        return self.entry_point.load()


def find(group: str) -> List[Found]:
    """Every entry point of `group`, deduplicated (a package on sys.path twice is one package)."""
    found: List[Found] = []
    seen = set()
    for ep in entry_points(group=group):
        dist = getattr(ep, "dist", None)
        package = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else ""
        ident = (package, ep.name, ep.value)
        if ident in seen:
            continue
        seen.add(ident)
        found.append(Found(group, ep.name, ep.value, package, version, ep))
    return sorted(found, key=lambda f: (f.package != "pgmig", f.package, f.name))
