"""``python -m sieve.runtime``: print the runtime's task graphs (the paper's Figure 8 as sieve declares it)."""

from sieve.runtime.graph import DENSE_LAYER, MOE_LAYER, describe

print("\n\n".join(describe(g) for g in (MOE_LAYER, DENSE_LAYER)))
