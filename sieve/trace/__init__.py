"""Command-stream generators: PIM work (expert GEMVs, decode attention) as DRAM/PIM commands."""
