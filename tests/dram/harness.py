"""Probe harness for timing gates: issue commands by name at chosen ticks, ask when the next is legal."""

from __future__ import annotations

from sieve.dram import Device


class Probe:
    def __init__(self, device: Device):
        self.device = device
        self.std = device.standard
        self.engine = device.engine(logging=True)

    def _id(self, name: str) -> int:
        return self.device.cmd_id(name)

    def earliest(self, name: str, addr, floor: int = 0) -> int:
        return self.engine.earliest(self._id(name), addr, floor)

    def ready_tick(self, name: str, addr) -> int:
        return self.engine.ready_tick(self._id(name), addr)

    def required_first(self, name: str, addr, row: int = 0) -> str:
        return self.std.command_names[self.engine.required_first(self._id(name), addr, row)]

    def issue(self, name: str, addr, tick: int | None = None, row: int = 0, col: int = 0) -> int:
        """Issue at `tick` (checked), or at the earliest legal tick when `tick` is None."""
        if tick is None:
            tick = self.earliest(name, addr, self.engine.last_issue_tick)
        self.engine.issue_at(self._id(name), addr, tick, row, col, True)
        return tick

    def prepare(self, name: str, addr, row: int = 0) -> None:
        """Issue whatever must come before `name` (ACT, PRE, PREA) at the earliest legal ticks."""
        while (first := self.required_first(name, addr, row)) != name:
            self.issue(first, addr, None, row)

    def is_legal(self, name: str, addr, tick: int) -> bool:
        return self.earliest(name, addr, tick) == tick

    def assert_earliest_ready_at(self, name: str, addr, tick: int) -> None:
        """The timing rules forbid `name` at tick-1 and allow it at `tick` (then its bus phase applies)."""
        ready = self.ready_tick(name, addr)
        assert ready == tick, f"{name} at {addr}: timing-ready at {ready}, expected {tick}"
        assert not self.is_legal(name, addr, tick - 1), f"{name} at {addr} legal at {tick - 1}, one tick early"
        aligned = self.earliest(name, addr, tick)
        assert aligned - tick < self.std.ticks_per_ck, f"{name}: bus phase moved {tick} to {aligned}"
        assert self.is_legal(name, addr, aligned)
