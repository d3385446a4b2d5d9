"""batchlens: enriched AWS Batch job history and alerts."""

__version__ = "0.1.0"
