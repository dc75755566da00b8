"""polynn benchmarks: polynn and its peers timed side by side in one run.

Run ``python -m benchmarks.run --quick`` (smoke run) or ``python -m benchmarks.run`` (full run).
See ``benchmarks/README.md``.
"""
