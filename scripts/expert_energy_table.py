"""Print the README's table: PIM against GPU time and energy of one routed expert per token count, and
the token counts from which the GPU is cheaper in energy and faster (``python scripts/expert_energy_table.py``)."""

from __future__ import annotations

import sys

from sieve.system.energy import expert_crossovers, expert_energy

MODELS = ("qwen3_30b_a3b", "gpt_oss_120b", "qwen3_5_397b_a17b")
TOKENS = (1, 2, 4, 8, 16, 32, 64)


def main(hw: str = "aim") -> None:
    print("| model | " + " | ".join(f"N = {n}" for n in TOKENS) + " | GPU cheaper from | GPU faster from |")
    print("|---" * (len(TOKENS) + 3) + "|")
    for model in MODELS:
        cells = []
        for n in TOKENS:
            e = expert_energy(hw, model, n)
            cells.append(f"{e.pim_j * 1e6:.0f} / {e.gpu_j * 1e6:.0f} µJ, {e.pim_s * 1e6:.1f} / {e.gpu_s * 1e6:.1f} µs")
        cross = expert_crossovers(hw, model)
        print(f"| {model} | " + " | ".join(cells) + f" | {cross['energy']} | {cross['speed']} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
