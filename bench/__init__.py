"""npcbridge benchmarks (not part of CI): see ``bench/README.md`` and ``bench/RESULTS.md``."""
