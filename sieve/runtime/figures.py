"""The figures ``sieve.run`` saves into a run directory."""

from __future__ import annotations

from pathlib import Path

__all__ = ["save_run_figures"]


def save_run_figures(result, run_dir: str | Path) -> list[Path]:
    """``channels.png`` (PIM utilization per channel of GPU 0, over the run) and ``layers.png`` (every task of
    step 0 on GPU 0's resources, coloured by kind, the critical path in full colour); returns the paths
    written."""
    from sieve.results import plots

    run_dir = Path(run_dir)
    s = result.summary
    name = f"{s['model']}, {s['sched']}, B={s['batch_size']}, {s['num_gpus']} GPU(s)"
    written = []
    figures = {
        "channels.png": lambda: plots.channel_utilization(result.channels, gpu=0, title=f"{name}: PIM channels"),
        "layers.png": lambda: plots.task_timeline(result.tasks, step=0, gpu=0,
                                                  title=f"{name}: step 0, GPU 0, critical path in full colour"),
    }
    for filename, draw in figures.items():
        fig = draw()
        fig.savefig(run_dir / filename, dpi=110, bbox_inches="tight")
        written.append(run_dir / filename)
    return written
