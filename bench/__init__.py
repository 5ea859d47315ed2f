"""Benchmarks of streamer (not part of the package): ``python -m bench [throughput|latency|memory|all]``.

See bench/README.md for what each section measures and how.
"""
