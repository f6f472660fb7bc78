"""Named timing rules with distances derived by hand, on the engine and on the protocol checker.

The other timing tests (tight gates, the oracle, the checker, the engine's tables) all take a rule's
distance in ticks from ``Standard.pair_latency_ticks``; an error there would be invisible to all of
them. Here each rule's distance is written out from the named timing parameters, with the bus-length
correction worked by hand, and checked against the engine (illegal one tick early, ready on time) and
the checker (reports the rule one tick early, nothing on time).

HBM3 (JESD238, Ramulator 2.1's HBM3): one tick is half a CK. Latencies run from the end of one command
to the end of the next, and commands are logged at their first tick. ACT holds the row bus 1.5 CK
(3 ticks), RD/WR the column bus 1 CK (2 ticks), PRE/PREA/REF half a CK (1 tick). So a distance is
2 x latency + (ticks of the first command - 1) - (ticks of the second - 1): ACT -> RD is 2 nRCDRD + 1.
The HBM3 distances also match the reference's command log (ramulator_hbm3.md: ACT -> RD 63 ticks,
ACT -> ACT 8 ticks (nRRDS), ACT -> PRE 92, PRE -> ACT 50, WR -> RD 44, WR -> PRE 91, RD -> RD on the
other stack id 6, WR -> WR on the other stack id 4).

GDDR6-AiM (the AiM simulator's GDDR6_AiM_timing): one tick is one CK and every command one cycle, so
a distance is the latency itself; the AiM rules also match the reference's command log of a five-line
trace (aim_reference.md: TMOD -> WRGB 32, ACT16 -> MAC16 56, MAC16 -> MAC16 2, MAC16 -> PREA 12,
PREA -> ACT16 32).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from sieve.dram import Device, check_log

from .harness import Probe

T0 = 200_001  # odd: a rising edge, far beyond every setup command


@dataclass(frozen=True)
class Rule:
    standard: str
    name: str
    prev: str
    prev_addr: tuple
    next: str
    next_addr: tuple
    distance: Callable[[dict], float]  # ticks from the first command's tick to the second's, by hand
    binding: str                       # the parameter the checker must name one tick early
    window: int = 1                    # preceding commands (a four-activate window: 4)


# HBM3 addresses: (channel, pseudo-channel, sid, bank group, bank)
B = (0, 0, 0, 0, 0)
HBM3 = [
    Rule("hbm3", "ACT->ACT same PC, other BG: nRRDS", "ACT", B, "ACT", (0, 0, 0, 1, 0), lambda t: 2 * t["nRRDS"], "nRRDS"),
    Rule("hbm3", "ACT->ACT same BG: nRRDL", "ACT", B, "ACT", (0, 0, 0, 0, 1), lambda t: 2 * t["nRRDL"], "nRRDL"),
    Rule("hbm3", "ACT->ACT same bank: nRC", "ACT", B, "ACT", B, lambda t: 2 * t["nRC"], "nRC"),
    Rule("hbm3", "ACT x4 -> ACT same PC: nFAW", "ACT", B, "ACT", (0, 0, 1, 0, 0), lambda t: 2 * t["nFAW"], "nFAW",
         window=4),
    Rule("hbm3", "ACT->RD same bank: nRCDRD", "ACT", B, "RD", B, lambda t: 2 * t["nRCDRD"] + 2 - 1, "nRCDRD"),
    Rule("hbm3", "ACT->WR same bank: nRCDWR", "ACT", B, "WR", B, lambda t: 2 * t["nRCDWR"] + 2 - 1, "nRCDWR"),
    Rule("hbm3", "ACT->PRE same bank: nRAS", "ACT", B, "PRE", B, lambda t: 2 * t["nRAS"] + 2, "nRAS"),
    Rule("hbm3", "PRE->ACT same bank: nRP", "PRE", B, "ACT", B, lambda t: 2 * t["nRP"] - 2, "nRP"),
    Rule("hbm3", "RD->RD same BG: nCCDL", "RD", B, "RD", (0, 0, 0, 0, 1), lambda t: 2 * t["nCCDL"], "nCCDL"),
    Rule("hbm3", "RD->RD same SID, other BG: nCCDS", "RD", B, "RD", (0, 0, 0, 1, 0),
         lambda t: 2 * max(t["nCCDS"], t["nBL"]), "nCCDS"),
    Rule("hbm3", "RD->RD other SID: nCCDR", "RD", B, "RD", (0, 0, 1, 0, 0), lambda t: 2 * t["nCCDR"], "nCCDR"),
    Rule("hbm3", "WR->WR other SID: nBL (no nCCDR)", "WR", B, "WR", (0, 0, 1, 0, 0), lambda t: 2 * t["nBL"], "nBL"),
    Rule("hbm3", "WR->WR same BG: nCCDL", "WR", B, "WR", (0, 0, 0, 0, 1), lambda t: 2 * t["nCCDL"], "nCCDL"),
    Rule("hbm3", "RD->WR same PC: nRTW", "RD", B, "WR", (0, 0, 1, 0, 0), lambda t: 2 * t["nRTW"], "nRTW"),
    Rule("hbm3", "WR->RD same BG: nCWL + nBL + nWTRL", "WR", B, "RD", (0, 0, 0, 0, 1),
         lambda t: 2 * (t["nCWL"] + t["nBL"] + t["nWTRL"]), "nWTRL"),
    Rule("hbm3", "WR->RD other BG: nCWL + nBL + nWTRS", "WR", B, "RD", (0, 0, 0, 1, 0),
         lambda t: 2 * (t["nCWL"] + t["nBL"] + t["nWTRS"]), "nWTRS"),
    Rule("hbm3", "RD->PRE same bank: nRTP", "RD", B, "PRE", B, lambda t: 2 * t["nRTP"] + 2 - 1, "nRTP"),
    Rule("hbm3", "WR->PRE same bank: nCWL + nBL + nWR", "WR", B, "PRE", B,
         lambda t: 2 * (t["nCWL"] + t["nBL"] + t["nWR"]) + 2 - 1, "nWR"),
    Rule("hbm3", "PRE->PRE same PC: nPPD", "PRE", B, "PRE", (0, 0, 0, 0, 1), lambda t: 2 * t["nPPD"], "nPPD"),
    Rule("hbm3", "REF->ACT same PC: nRFC", "REF", B, "ACT", B, lambda t: 2 * t["nRFC"] - 2, "nRFC"),
]

# GDDR6-AiM addresses: (channel, bank group, bank); all-bank commands take the channel's
A = (0, 0, 0)
AIM = [
    Rule("gddr6_aim", "TMOD->WRGB: nMODCH", "TMOD", A, "WRGB", A, lambda t: t["nMODCH"], "nMODCH"),
    Rule("gddr6_aim", "TMOD->ACT16: nMODCH", "TMOD", A, "ACT16", A, lambda t: t["nMODCH"], "nMODCH"),
    Rule("gddr6_aim", "ACT16->MAC16: nRCDRDMAC", "ACT16", A, "MAC16", A, lambda t: t["nRCDRDMAC"], "nRCDRDMAC"),
    Rule("gddr6_aim", "ACT16->EWMUL16: nRCDEWMUL", "ACT16", A, "EWMUL16", A, lambda t: t["nRCDEWMUL"], "nRCDEWMUL"),
    Rule("gddr6_aim", "ACT16->AF16: nRCDRDAF", "ACT16", A, "AF16", A, lambda t: t["nRCDRDAF"], "nRCDRDAF"),
    Rule("gddr6_aim", "ACT->RDCP same bank: nRCDRDCP", "ACT", A, "RDCP", A, lambda t: t["nRCDRDCP"], "nRCDRDCP"),
    Rule("gddr6_aim", "ACT->WRCP same bank: nRCDWRCP", "ACT", A, "WRCP", A, lambda t: t["nRCDWRCP"], "nRCDWRCP"),
    Rule("gddr6_aim", "MAC16->MAC16: nCCDL", "MAC16", A, "MAC16", A, lambda t: t["nCCDL"], "nCCDL"),
    Rule("gddr6_aim", "MAC16->PREA: nRTP", "MAC16", A, "PREA", A, lambda t: t["nRTP"], "nRTP"),
    Rule("gddr6_aim", "PREA->ACT16: nRP", "PREA", A, "ACT16", A, lambda t: t["nRP"], "nRP"),
    Rule("gddr6_aim", "WRGB->WRGB: nBL", "WRGB", A, "WRGB", A, lambda t: max(t["nBL"], t["nCCDS"]), "nBL"),
    Rule("gddr6_aim", "WRGB->RDMAC16: nCWLGB + nBL + nWTRS", "WRGB", A, "RDMAC16", A,
         lambda t: t["nCWLGB"] + t["nBL"] + t["nWTRS"], "nWTRS"),
    Rule("gddr6_aim", "RDMAC16->WRGB: nCLREG + nBL + 3 - nCWLGB + nWPRE", "RDMAC16", A, "WRGB", A,
         lambda t: t["nCLREG"] + t["nBL"] + 3 - t["nCWLGB"] + t["nWPRE"], "nWPRE"),
    Rule("gddr6_aim", "EWMUL16->PREA: nCWL + nWR", "EWMUL16", A, "PREA", A, lambda t: t["nCWL"] + t["nWR"], "nWR"),
    Rule("gddr6_aim", "WRA16->ACT16: nCWL + nBL + nWR + nRP", "WRA16", A, "ACT16", A,
         lambda t: t["nCWL"] + t["nBL"] + t["nWR"] + t["nRP"], "nRP"),
    # the records of the reference's 0f28a07 (aim_reference.md's all_isr trace: ACT at 13, TMOD at 102 = 13
    # + nRC, ACT16 over the open bank 32 later); ACT16 -> ACT and ACT -> ACT of a bank pass a precharge
    # (nRAS + nRP = 86 < nRC)
    Rule("gddr6_aim", "ACT->ACT16 over the bank it opened: nRC", "ACT", A, "ACT16", A, lambda t: t["nRC"], "nRC"),
    Rule("gddr6_aim", "ACT16->ACT: nRC", "ACT16", A, "ACT", A, lambda t: t["nRC"], "nRC"),
    Rule("gddr6_aim", "ACT->ACT same bank: nRC", "ACT", A, "ACT", A, lambda t: t["nRC"], "nRC"),
    Rule("gddr6_aim", "ACT->ACT other bank group: nRRDS", "ACT", A, "ACT", (0, 1, 0), lambda t: t["nRRDS"], "nRRDS"),
]

RULES = HBM3 + AIM
ROW = 3


def _timing(dev: Device) -> dict:
    return {k: float(v) for k, v in dev.standard.timing.items()}


def _window_addresses(rule: Rule) -> list[tuple]:
    """The preceding ACTs of a window: one per bank group of the pseudo-channel (nRRDS apart)."""
    return [rule.prev_addr[:3] + (g, 0) for g in range(rule.window)]


def _issue_preceding(probe: Probe, rule: Rule) -> int:
    """Issue the rule's preceding command(s) from T0; returns the first one's tick."""
    prevs = _window_addresses(rule) if rule.window > 1 else [rule.prev_addr]
    for a in prevs + [rule.next_addr]:
        probe.prepare(rule.prev if a in prevs else rule.next, list(a), ROW)
    first = probe.earliest(rule.prev, list(prevs[0]), T0)
    probe.issue(rule.prev, list(prevs[0]), first, ROW)
    for a in prevs[1:]:
        probe.prepare(rule.prev, list(a), ROW)
        probe.issue(rule.prev, list(a), None, ROW)
    # what the second command needs first (a PRE between two ACTs of a bank), as early as legal
    probe.prepare(rule.next, list(rule.next_addr), ROW)
    return first


def _preceded(rule: Rule) -> tuple[Device, Probe, int]:
    """A device with the rule's preceding command(s) issued, and the tick the rule frees the next."""
    dev = Device(rule.standard)
    probe = Probe(dev)
    first = _issue_preceding(probe, rule)
    return dev, probe, first + int(rule.distance(_timing(dev)))


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.standard}: {r.name}" for r in RULES])
def test_rule_on_the_engine(rule):
    _, probe, expected = _preceded(rule)
    probe.assert_earliest_ready_at(rule.next, list(rule.next_addr), expected)


def _log_with_last_at(dev: Device, probe: Probe, tick: int):
    log = dev.log_of(probe.engine)
    ticks = np.asarray(log.tick).copy()
    ticks[-1] = tick
    return dataclasses.replace(log, tick=ticks)


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.standard}: {r.name}" for r in RULES])
def test_rule_on_the_checker(rule):
    dev, probe, expected = _preceded(rule)
    probe.issue(rule.next, list(rule.next_addr), probe.earliest(rule.next, list(rule.next_addr), expected), ROW)
    timing_rules = lambda v: [x.rule for x in v if "odd ticks" not in x.rule and "even ticks" not in x.rule]
    on_time = check_log(dev.standard, _log_with_last_at(dev, probe, expected))
    assert timing_rules(on_time) == []
    early = timing_rules(check_log(dev.standard, _log_with_last_at(dev, probe, expected - 1)))
    assert any(rule.binding in r for r in early), early


def test_every_named_parameter_exists():
    devices = {name: Device(name) for name in {r.standard for r in RULES}}
    for rule in RULES:
        timing = _timing(devices[rule.standard])
        rule.distance(timing)  # a KeyError names a parameter the standard lacks
        assert rule.binding in timing, (rule.name, rule.binding)
