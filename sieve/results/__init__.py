"""Results of sieve runs as tidy tables, and the figures drawn from them (:mod:`sieve.results.plots`)."""

from .collect import collect

__all__ = ["collect"]
