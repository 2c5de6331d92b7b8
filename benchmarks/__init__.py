"""Benchmarks of ConvBERT against a same-size BERT built from the same code (see README.md)."""
