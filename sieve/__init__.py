"""sieve: cycle-level DRAM/PIM simulation of Mixture-of-Experts serving."""

__version__ = "0.1.0"
