"""Shared pytest setup: quiet TensorFlow logs, import path at the repository root."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import convbert_tf  # noqa: E402,F401  (before any test module imports TensorFlow: it sets TensorFlow's CPU options)
