"""Compiled core. Private: use the Python modules around it (``sieve.dram``, ...)."""
