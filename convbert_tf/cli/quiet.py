"""Keeps TensorFlow's C++ start-up chatter off the terminal.

Importing TensorFlow, and its first look for devices, print lines such as the oneDNN notice, the
CUDA stub's "Could not find cuda drivers", cpu_feature_guard's instruction list and, on hosts
without a GPU, a red-looking `E0000 ... failed call to cuInit`. Most of them are logged before
TensorFlow initialises its logging, so `TF_CPP_MIN_LOG_LEVEL` cannot hide them (and level 2 still
shows the cuInit error). `import_tensorflow_quietly` therefore sends file descriptor 2 to a
temporary file while TensorFlow loads and lists its devices, then writes back every line that is
not known chatter: Python warnings and real errors still reach the terminal.

Later C++ info and warning lines (the first XLA compilation's notices, the input pipeline's
end-of-sequence notes) are hidden by defaulting `TF_CPP_MIN_LOG_LEVEL` to 2, errors still show; a
value the user set wins. `CONVBERT_TF_VERBOSE=1` (any value but empty or 0) turns all of this off
and shows everything.

No TensorFlow here until `import_tensorflow_quietly` runs; may be imported by any module.
"""

import contextlib
import os
import re
import sys
import tempfile

VERBOSE_VARIABLE = "CONVBERT_TF_VERBOSE"
LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# Lines TensorFlow writes while it loads and probes for devices that say nothing wrong.
CHATTER = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|^[IWE]\d{4} [\d:. ]+\d+ (port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor|"
    r"cuda_dnn|cuda_fft|cuda_blas|cuda_diagnostics|gpu_device|computation_placer)\.cc:\d+\]"
    r"|^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"
    r"|^Unable to register cu(DNN|FFT|BLAS) factory")


def is_verbose(environ=os.environ) -> bool:
    return environ.get(VERBOSE_VARIABLE, "").strip() not in ("", "0")


def is_chatter(line: str) -> bool:
    return bool(CHATTER.search(line))


@contextlib.contextmanager
def _stderr_to(file):
    """Points file descriptor 2 (C++ and Python alike) at `file` inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(file.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow_quietly(environ=os.environ) -> None:
    """Imports TensorFlow and lists its devices with the start-up chatter filtered out of stderr.

    Also defaults TF_CPP_MIN_LOG_LEVEL to 2 (errors of TensorFlow's C++ code still show). Does
    nothing when TensorFlow is already loaded or when `CONVBERT_TF_VERBOSE` asks for everything.
    Listing the physical devices does not initialise the runtime, so strategies and device
    settings chosen later still apply.
    """
    if "tensorflow" in sys.modules or is_verbose(environ):
        return
    environ.setdefault(LOG_LEVEL_VARIABLE, "2")
    try:
        captured = tempfile.TemporaryFile(mode="w+b")
    except OSError:  # no writable temp directory: TensorFlow loads as usual
        return
    with captured:
        try:
            with _stderr_to(captured):
                import tensorflow as tf
                tf.config.list_physical_devices()
        finally:
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not is_chatter(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
