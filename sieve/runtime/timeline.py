"""Resource timelines: tasks placed in program order on lanes, each lane running one task at a time.

A lane is one resource of the machine (a GPU's compute stream, its weight stream from HBM-PIM, its PIM
channels, each direction of its NVLink port, its scheduler stream). A task starts when everything it
depends on has ended *and* every lane it occupies is free, and occupies those lanes for its duration::

    start = max(ready, free[lane] for lane in lanes);   end = start + duration;   free[lane] = end

Tasks are placed in the order they are added (as kernels are issued to a stream), never reordered.
A collective (an NVLink all-to-all) is one task on the link lanes of every GPU, so it starts when the
slowest GPU is ready. Times are seconds from the start of the run.

Spans (what ran where and when) are kept only when ``record=True``; the placement of tasks does not
depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

__all__ = ["Span", "Timeline"]


@dataclass(frozen=True)
class Span:
    """One task on one lane."""

    lane: str
    name: str
    start_s: float
    end_s: float
    step: int
    layer: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Timeline:
    """Lanes with the time each becomes free, and (optionally) the spans placed on them."""

    def __init__(self, record: bool = False):
        self._free: dict[str, float] = {}
        self.record = record
        self.spans: list[Span] = []
        self.step = -1
        self.layer = -1

    def free_at(self, lane: str) -> float:
        """When ``lane`` is next free (0 for a lane never used)."""
        return self._free.get(lane, 0.0)

    def place(self, name: str, lanes: str | Iterable[str], duration_s: float,
              ready_s: float = 0.0) -> tuple[float, float]:
        """Place a task; returns ``(start_s, end_s)``.

        ``lanes``: the lane or lanes the task occupies for its whole duration. A task of zero duration takes
        no time and records no span."""
        if isinstance(lanes, str):
            lanes = (lanes,)
        elif not isinstance(lanes, tuple):
            lanes = tuple(lanes)
        if not duration_s >= 0:
            raise ValueError(f"task {name!r} has duration {duration_s!r}; allowed: a number >= 0")
        free = self._free
        start = ready_s
        for lane in lanes:
            at = free.get(lane, 0.0)
            if at > start:
                start = at
        if duration_s == 0:
            return start, start
        end = start + duration_s
        for lane in lanes:
            free[lane] = end
        if self.record:
            self.spans.extend(Span(lane, name, start, end, self.step, self.layer) for lane in lanes)
        return start, end

    def place_on(self, name: str, lane: str, duration_s: float, ready_s: float = 0.0) -> tuple[float, float]:
        """:meth:`place` on a single lane (what most tasks occupy), without the lane loops."""
        if not duration_s >= 0:
            raise ValueError(f"task {name!r} has duration {duration_s!r}; allowed: a number >= 0")
        free = self._free.get(lane, 0.0)
        start = free if free > ready_s else ready_s
        if duration_s == 0:
            return start, start
        end = self._free[lane] = start + duration_s
        if self.record:
            self.spans.append(Span(lane, name, start, end, self.step, self.layer))
        return start, end
