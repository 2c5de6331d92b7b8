"""Pretraining pieces that need no model: dynamic masking and the TFRecord input pipeline."""
