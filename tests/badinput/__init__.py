"""Malformed and hostile inputs for the enricher (see corpus.py)."""
