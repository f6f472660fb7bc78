"""sieve: cycle-level DRAM/PIM simulation of Mixture-of-Experts serving.

``sieve.simulate(["+hw=aim", "+model=deepseek"])`` runs one configuration of the main job and returns its
:class:`~sieve.runtime.RunResult` (summary and tables); see :mod:`sieve.runtime`. Subpackages: ``dram``
(the cycle-level engine), ``pim`` (PIM experts and attention on it), ``hw``, ``model``, ``routing``,
``system`` (GPU and NVLink models), ``sched`` (placement policies), ``runtime``, ``results``.
"""

__version__ = "0.1.0"

__all__ = ["simulate", "__version__"]


def simulate(cfg_or_overrides=(), progress=None):
    """Run one configuration (Hydra overrides or a composed config); see :func:`sieve.runtime.simulate`."""
    from sieve.runtime import simulate as _simulate

    return _simulate(cfg_or_overrides, progress=progress)
