"""Phase timings for `--timings`: load, introspect, compare, render (seconds, summed per phase)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Dict, Iterator, List

PHASES = ("load", "introspect", "compare", "render")


class Timings:
    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def lines(self) -> List[str]:
        names = list(PHASES) + [n for n in self.seconds if n not in PHASES]
        return [f"timing: {name} {self.seconds.get(name, 0.0):.3f}s" for name in names]


class NoTimings(Timings):
    """Stands in when nobody asked: phases cost nothing to enter."""

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        yield
