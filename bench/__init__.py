"""vigil's benchmarks against the libraries people use today; run ``python -m bench.run``."""
