"""Throughput benchmarks (`run`) and the figures the book's benchmark page shows from their records (`report`).
"""
