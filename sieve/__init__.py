"""sieve: cycle-level DRAM/PIM simulation of Mixture-of-Experts serving.

``sieve.simulate(["+hw=aim", "+model=deepseek"])`` runs one configuration of the main job and returns its
:class:`~sieve.runtime.RunResult` (summary and tables); see :mod:`sieve.runtime`. Subpackages: ``dram``
(the cycle-level engine), ``pim`` (PIM experts and attention on it), ``hw``, ``model``, ``routing``,
``system`` (GPU and NVLink models), ``sched`` (placement policies), ``runtime``, ``results``.
"""

__version__ = "0.1.0"

__all__ = ["simulate", "__version__"]


def simulate(cfg_or_overrides=(), progress=None):
    """Run one configuration of the main job and return its :class:`~sieve.runtime.RunResult`.

    ``cfg_or_overrides``: a list of the overrides ``python -m sieve.run`` takes, one string per override,
    e.g. ``["+hw=aim", "+model=qwen3_30b_a3b", "sched=pimoe", "workload.batch_size=64"]`` (``+hw=`` and
    ``+model=`` are required; the groups, options and keys are in the README and ``sieve/conf/``), or a
    config composed with :func:`sieve.runtime.compose`. A bad override raises
    :class:`sieve.runtime.ConfigError` naming it and the valid choices. ``progress``: show a progress bar
    (default: the config's ``progress``).

    The result's ``summary`` (a dict, as ``summary.json``) holds ``model, hw, sched, batch_size, num_gpus,
    sub_batches, decode_steps, prefill_requests, seed, routing``, the times ``tpot_s`` (seconds per output
    token), ``tokens_per_s_per_user``, ``tokens_per_s_per_gpu``, the busy fractions ``gpu_busy, pim_busy,
    nvlink_busy, sched_busy`` (of the run time, averaged over GPUs), ``pim_expert_share, pim_token_share``
    and ``memory_per_gpu_gb, memory_capacity_gb`` (GB of 2^30 bytes); its tables ``layers, channels,
    experts, steps`` are pandas DataFrames (columns in :mod:`sieve.runtime.result`). Nothing is written:
    :func:`sieve.runtime.write_run` writes a run directory.

    >>> r = sieve.simulate(["+hw=aim", "+model=qwen3_30b_a3b", "workload.batch_size=4"])  # doctest: +SKIP
    >>> r.summary["tpot_s"], r.layers.groupby("attention_on")["time_s"].sum()              # doctest: +SKIP
    """
    from sieve.runtime import simulate as _simulate

    return _simulate(cfg_or_overrides, progress=progress)
