"""Batch-1 latency of the exported SavedModel against the in-process model."""

import os

import numpy as np
import tensorflow as tf

from benchmarks.options import Options
from benchmarks.timing import Report, interleaved, median
from benchmarks.workloads import Workspace

def savedmodel_section(size_result, workspace: Workspace, options: Options, report: Report):
    """Batch-1 latency of the exported SavedModel against the in-process model."""
    from convbert_tf.export import export_encoder  # needs tensorflow_text at load time
    export_dir = os.path.join(workspace.dir, "saved_model")
    export_encoder(size_result["encoder"], export_dir, vocab_file=os.path.join(workspace.dir, "vocab.txt"),
                   max_seq_length=size_result["latency_batch"]["input_ids"].shape[1], overwrite=True)
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    batch = size_result["latency_batch"]
    forward = size_result["forward"]
    served = serve(**batch)["sequence_output"].numpy()
    in_process = tf.cast(forward(batch), tf.float32).numpy()
    difference = float(np.abs(served - in_process).max())
    variants = {"in-process": lambda: [forward(batch) for _ in range(5)][-1].numpy(),
                "SavedModel": lambda: [serve(**batch) for _ in range(5)][-1]["sequence_output"].numpy()}
    with tf.device(options.device):
        times = interleaved(variants, options.repeats)
    ratio = median(times["SavedModel"]) / median(times["in-process"])
    report.line(f"\n== SavedModel (serving_default) vs in-process, batch {batch['input_ids'].shape[0]} x "
                f"{batch['input_ids'].shape[1]} ==")
    report.line(f"in-process {1e3 * median(times['in-process']) / 5:.1f} ms, SavedModel "
                f"{1e3 * median(times['SavedModel']) / 5:.1f} ms, max |difference| {difference:.1e}")
    report.line(f"RATIO SavedModel/in-process batch-1 latency = {ratio:.2f}")
    return ratio
