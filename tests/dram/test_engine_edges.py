"""The engine's Python face: addresses checked against the command's scope, and a command log that
survives running out of memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sieve.dram import Device

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hbm3():
    return Device("hbm3")


@pytest.mark.parametrize("bad", [-3, None, 4])
@pytest.mark.parametrize("method", ["earliest", "ready_tick", "required_first", "issue_at"])
def test_bank_index_outside_the_level_is_refused(hbm3, method, bad):
    eng = hbm3.engine()
    act = hbm3.standard.command_names.index("ACT")
    args = (act, (0, 0, 0, 0, bad)) + ((0,) if method == "issue_at" else ())
    with pytest.raises(ValueError, match=rf"index {bad!r} at level 4 is outside 0\.\.3"):
        getattr(eng, method)(*args)
    assert eng.log()[0].size == 0  # nothing was applied


def test_levels_below_the_scope_are_free(hbm3):
    """A log's -1 below a command's scope replays: those levels do not name a node for the command."""
    eng = hbm3.engine()
    std = hbm3.standard
    ref = std.command_names.index(std.refresh_command)
    scope = std.level_index(std.command(std.refresh_command).scope)
    addr = (0,) * (scope + 1) + (-1,) * (len(std.levels) - scope - 1)
    eng.issue_at(ref, addr, eng.earliest(ref, addr))
    tick, cmd, logged, _, _ = eng.log()
    assert list(cmd) == [ref] and list(logged[0]) == list(addr)


def test_address_shorter_than_the_scope_is_refused(hbm3):
    eng = hbm3.engine()
    act = hbm3.standard.command_names.index("ACT")
    with pytest.raises(ValueError, match=r"needs indices at levels 0\.\.4"):
        eng.earliest(act, (0, 0))


def test_log_arrays_match_the_issued_stream(hbm3):
    n = 3000
    names = np.tile(["ACT", "RD", "PRE"], n // 3)
    addr = np.zeros((n, len(hbm3.standard.levels)), dtype=np.int64)
    addr[:, 4] = (np.arange(n) // 3) % 4
    res = hbm3.execute(names, addr, log=True)
    log = res.log
    assert log.tick.dtype == np.int64 and log.addr.shape == (n, len(hbm3.standard.levels))
    assert np.array_equal(log.tick, res.ticks)
    assert np.array_equal(log.cmd, hbm3.cmd_ids(names))
    assert np.array_equal(log.addr, addr)
    log.tick[0] = -5  # a copy: the engine's buffer is untouched
    assert res.engine.log()[0][0] == res.ticks[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="address-space limits as on Linux")
def test_log_out_of_memory_keeps_the_run_and_says_so(hbm3):
    """With the address space capped, growing the log fails part way: the run still completes with the
    same ticks, logging stops, and log() raises instead of returning a truncated log."""
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        import numpy as np
        from sieve.dram import Device
        from sieve.dram.device import StreamSession
        dev = Device("hbm3")
        n = 1_500_000
        cmds = np.tile(dev.cmd_ids(["ACT", "RD", "PRE"]), n // 3)
        addr = np.zeros((n, 5), dtype=np.int64)
        addr[:, 4] = (np.arange(n) // 3) % 4
        quiet = StreamSession(dev, log=False).run(cmds, addr)
        session = StreamSession(dev, log=True)
        vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + 40 * 2**20, resource.RLIM_INFINITY))
        ticks = session.run(cmds, addr)
        assert np.array_equal(ticks, quiet) and not session.engine.logging
        try:
            session.engine.log()
        except MemoryError as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "the command log ran out of memory after" in out.stdout


def _one_bank_open(name: str, bank_addr: list[int], row: int):
    dev = Device(name)
    eng = dev.session(refresh="off").engine
    eng.issue_at(dev.cmd_id("ACT"), bank_addr, eng.earliest(dev.cmd_id("ACT"), bank_addr), row=row)
    return dev, eng


def test_all_bank_activate_over_banks_already_on_its_row():
    """gddr6_aim's ACT16 may find banks on its own row (needs: closed_or_row), as the AiM simulator's
    all-bank prerequisite asks for ACT16 rather than PREA when the open banks all hold the wanted row:
    bank 0 on row 3, the other 15 closed -> MAC16 on row 3 needs ACT16 first, on row 4 a PREA."""
    dev, eng = _one_bank_open("gddr6_aim", [0, 0, 0], 3)
    mac16, act16 = dev.cmd_id("MAC16"), dev.cmd_id("ACT16")
    assert eng.required_first(mac16, [0], 3) == act16
    assert eng.required_first(act16, [0], 3) == act16
    assert eng.required_first(mac16, [0], 4) == dev.cmd_id("PREA")
    assert eng.required_first(act16, [0], 4) == dev.cmd_id("PREA")
    eng.issue_at(act16, [0], eng.earliest(act16, [0]), row=3)
    assert eng.required_first(mac16, [0], 3) == mac16
    assert (eng.open_rows().reshape(32, 16)[0] == 3).all()


def test_all_bank_activate_that_needs_every_bank_closed():
    """hbm3e_aim's ACT16 needs every bank closed: the same partly open state asks for PREA first."""
    dev, eng = _one_bank_open("hbm3e_aim", [0, 0, 0, 0], 3)
    assert eng.required_first(dev.cmd_id("MAC16"), [0, 0], 3) == dev.cmd_id("PREA")


def test_a_new_engine_starts_clean_after_others_were_dropped():
    """Dropped engines leave their state tables for the next engine of that size: it must start with
    no history (every command legal at tick 0, no counts) and repeat a run tick for tick."""
    from sieve._core.engine import free_spare_tables

    free_spare_tables()  # so that the engines below take each other's tables
    dev = Device("gddr6_aim")
    names = ["ACT16", "MAC16", "PREA", "ACT", "RD", "PRE"] * 20
    addr = np.zeros((len(names), 3), dtype=np.int64)
    addr[:, 0] = np.arange(len(names)) % 4
    first = dev.execute(names, addr, auto_prereq=True)
    for _ in range(5):
        dropped = dev.execute(names[::-1], addr, auto_prereq=True)
        del dropped
    _assert_clean(dev, dev.engine())
    again = dev.execute(names, addr, auto_prereq=True)
    assert (again.ticks == first.ticks).all()
    assert (again.engine.bank_counts() == first.engine.bank_counts()).all()


def _assert_clean(dev: Device, eng) -> None:
    """No history: every command legal at tick 0 at every bank (so at every node above it), no counts."""
    for bank in np.ndindex(*dev.standard.fanout):
        for cmd in range(dev.tables.cmd_scope.shape[0]):
            assert eng.ready_tick(cmd, list(bank)) == 0, (cmd, bank)
    assert not eng.bank_counts().any()


def test_a_new_engine_starts_clean_after_a_sibling_rule_at_the_first_level():
    """Standards have no sibling rule at the first level (the spec refuses one), but the engine takes any
    tables: such a rule writes the ready ticks of channels no command was addressed to, and a dropped
    engine must leave those clean too."""
    import dataclasses

    from sieve._core.engine import TimingEngine, free_spare_tables

    free_spare_tables()  # so that the engines below take each other's tables
    dev = Device("gddr6")
    tables = dev.tables
    act = dev.cmd_id("ACT")
    first_level = np.flatnonzero(tables.ent_level == 0)
    rule = first_level[(first_level >= tables.ent_start[act * 3]) & (first_level < tables.ent_start[act * 3 + 1])][0]
    sibling = tables.ent_sibling.copy()
    sibling[rule] = 1
    tables = dataclasses.replace(tables, ent_sibling=sibling)
    nxt = int(tables.ent_next[rule])
    for _ in range(5):
        eng = TimingEngine(tables)
        eng.issue_at(act, [0, 0, 0], 0)
        assert eng.ready_tick(nxt, [7, 0, 0]) == tables.ent_lat[rule]  # the rule reached channel 7
        del eng
    eng = TimingEngine(tables)  # its two state tables are the last engine's, either way round
    for bank in np.ndindex(*dev.standard.fanout):
        for cmd in range(tables.cmd_scope.shape[0]):
            assert eng.ready_tick(cmd, list(bank)) == 0, (cmd, bank)
    assert not eng.bank_counts().any()


def test_engines_share_only_their_own_tables_preparation():
    """What an engine derives from its tables is prepared once per tables object and shared: tables made
    afresh (which may reuse a dropped object's address) get their own, and the arrays are read-only so
    that nothing prepared goes stale."""
    import gc

    from sieve._core import engine as engine_module
    from sieve._core.engine import TimingEngine
    from sieve.dram.resolve import resolve
    from sieve.dram.spec import load_standard

    gc.collect()
    kept = len(engine_module._PREPARED)
    for name in ["gddr6", "hbm3", "gddr6_aim", "hbm3", "gddr6"] * 2:
        tables = resolve(load_standard(name))
        with pytest.raises(ValueError, match="read-only"):
            tables.ent_lat[0] = 1
        eng = TimingEngine(tables)
        assert (eng.num_commands, eng.num_levels, eng.num_banks) == (
            tables.num_commands, tables.num_levels, int(np.prod(tables.fanout)))
        act, rd, addr = tables.cmd_id("ACT"), tables.cmd_id("RD"), [0] * tables.num_levels
        other = Device(name).engine()  # over its own tables object
        for e in (eng, other):
            e.issue_at(act, addr, e.earliest(act, addr))
        assert eng.ready_tick(rd, addr) == other.ready_tick(rd, addr) > 0
        del eng, tables
        gc.collect()
    assert len(engine_module._PREPARED) <= kept  # dropped with their tables


def test_a_prepared_engine_serves_only_the_tables_object_it_came_from():
    """An address of dropped tables can come back for new ones: what is kept under it is not theirs."""
    from sieve._core import engine as engine_module
    from sieve._core.engine import TimingEngine
    from sieve.dram.resolve import resolve
    from sieve.dram.spec import load_standard

    small, large = resolve(load_standard("gddr6")), resolve(load_standard("hbm3"))
    TimingEngine(small)
    engine_module._PREPARED[id(large)] = engine_module._PREPARED[id(small)]  # as if `large` took its address
    try:
        assert TimingEngine(large).num_commands == large.num_commands != small.num_commands
    finally:
        engine_module._PREPARED.pop(id(large), None)
