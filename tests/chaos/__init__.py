"""`make chaos`: a fault-injection soak of the real enricher handler (see soak.py)."""
