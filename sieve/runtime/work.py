"""What a run's tasks did besides taking time, summed for the run's energy (:func:`sieve.system.energy.run_energy`).

Every placed task adds its work when its duration is asked (once per placed task), from the same records its
duration came from: GPU kernels their FLOPs and bytes (:class:`sieve.system.KernelWork`: projections, decode
and prefill attention, router, dense FFN, shared experts, routed experts on the GPU, embedding, LM head; the
grouped-GEMM metadata kernel and the scheduler move nothing), collectives the bytes every GPU sends
(:class:`sieve.system.LinkTraffic`), PIM attention and every expert of a PIM expert phase the commands the
cycle-level engine issued on all channels (``total_commands``). PIM commands are counted per distinct
memoized result and expanded once at the end, so a run pays a dictionary update per PIM task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sieve.system import RunTotals, prefill_attention_work
from sieve.system.gpu import KernelWork, experts_work_of

if TYPE_CHECKING:
    from .costs import LayerCosts

__all__ = ["RunWork", "TASK_WORK"]


class RunWork:
    """Running sums of one run's GPU FLOPs and bytes, NVLink bytes and PIM commands (all GPUs)."""

    def __init__(self):
        self.gpu_flops = 0.0
        self.gpu_bytes = 0.0
        self.link_bytes = 0.0
        self._pim: dict = {}  # key of a memoized PIM result -> [the result, times issued]

    def gpu(self, work: KernelWork) -> None:
        self.gpu_flops += work.flops
        self.gpu_bytes += work.bytes_moved

    def pim(self, key, result, times: int = 1) -> None:
        """``times`` more issues of a PIM result (anything with ``total_commands``) memoized under ``key``."""
        entry = self._pim.get(key)
        if entry is None:
            self._pim[key] = [result, times]
        else:
            entry[1] += times

    def pim_experts(self, layout: str, tokens: list[int], expert_time) -> None:
        """One more issue of a PIM expert with ``n`` tokens for each ``n`` of ``tokens`` (memoized under ``("pim", n,
        layout)``; ``expert_time(n)``: its result, asked only for a key not seen before)."""
        entries = self._pim
        for n in tokens:
            if n:
                key = ("pim", n, layout)
                entry = entries.get(key)
                if entry is None:
                    entries[key] = [expert_time(n), 1]
                else:
                    entry[1] += 1

    @property
    def pim_commands(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for result, times in self._pim.values():
            for name, n in result.total_commands.items():
                total[name] = total.get(name, 0) + int(n) * times
        return total

    def totals(self, seconds: float, num_gpus: int, tokens: int) -> RunTotals:
        return RunTotals(seconds=seconds, num_gpus=num_gpus, tokens=tokens, gpu_flops=self.gpu_flops,
                         gpu_memory_bytes=self.gpu_bytes, link_bytes=self.link_bytes,
                         pim_commands=self.pim_commands)


# ---------------------------------------------------------------------------------------------- per task
def _gpu_attention(c: "LayerCosts", k: int, g: int) -> None:
    c.run.work.gpu(c.gpu_attention_work(k, g))


def _pim_attention(c: "LayerCosts", k: int, g: int) -> None:
    att = c._pim_attention(k, g)
    c.run.work.pim(("att", c.layer_type, c.subs[k].ctx_keys[g]), att)


def _gpu_experts(c: "LayerCosts", k: int, g: int) -> None:
    run, split = c.run, c.gpu_split[k][g]  # (tokens, activated experts): all the work depends on
    run.work.gpu(run.memoized(("gpu experts work", *split), experts_work_of, run.sim.model, *split))


def _pim_experts(c: "LayerCosts", k: int, g: int) -> None:
    run = c.run
    run.work.pim_experts(run.layout, c.pim_tokens[k][g], run.pim_expert_here)


def _link(field: str):
    def add(c: "LayerCosts", k: int, g) -> None:
        c.run.work.link_bytes += getattr(c._collectives(k), field)
    return add


def _non_expert(part: str):
    def add(c: "LayerCosts", k: int, g: int) -> None:
        c.run.work.gpu(getattr(c.ne[k][g].work, part))
    return add


def _nothing(c, k, g) -> None:
    pass


TASK_WORK: dict[str, Callable] = {
    "attention projections": _non_expert("attention_projections"), "router": _non_expert("router"),
    "shared experts": _non_expert("shared_expert"), "dense FFN": _non_expert("dense_ffn"),
    "GPU attention": _gpu_attention, "PIM attention": _pim_attention,
    "prefill attention": lambda c, k, g: c.run.work.gpu(
        prefill_attention_work(c.run.sim.model, c.layer, c.subs[k].prompts[g])),
    "GPU experts": _gpu_experts, "PIM experts": _pim_experts,
    "routing AllGather": _link("allgather_bytes"), "dispatch": _link("dispatch_bytes"),
    "combine": _link("combine_bytes"),
    "grouped-GEMM metadata": _nothing, "scheduler": _nothing,
}
"""What each task of a layer graph adds to :class:`RunWork`, from its :class:`~sieve.runtime.costs.LayerCosts`."""
