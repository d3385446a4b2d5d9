"""Benchmarks of batchlens against a naive per-event enricher (`make bench`)."""
