"""The pure cores of the seven loops: no I/O, no database, deterministic under a seed, typed."""
