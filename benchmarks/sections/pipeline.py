"""The input pipeline alone (read, parse, dynamic masking), against what a train step consumes."""

import io

import tensorflow as tf

from benchmarks.options import Options, Shapes
from benchmarks.timing import Report, interleaved, median
from benchmarks.workloads import Workspace
from convbert_tf.pretraining import run as trainer

def input_pipeline_section(workspace: Workspace, options: Options, shapes: Shapes, report: Report,
                           consumed_tokens_per_second: float):
    """Reading + parsing + dynamic masking (the trainer's pipeline) alone, in tokens/s."""
    hp = workspace.hparams("small", shapes, options, bert=False, electra=True)
    strategy = tf.distribute.OneDeviceStrategy(options.device)
    run = trainer.Pretraining(hp, strategy, out=io.StringIO())
    iterator = iter(run.distributed_dataset(hp.pretrain_tfrecords, hp.train_batch_size, True))
    batches = 10 if options.quick else 100
    for _ in range(5):
        next(iterator)

    def read():
        for _ in range(batches):
            features = next(iterator)
        features["masked_lm_ids"].numpy()

    times = interleaved({"pipeline": read}, max(3, options.repeats), warmup=0)["pipeline"]
    rate = batches * hp.train_batch_size * hp.max_seq_length / median(times)
    ratio = rate / consumed_tokens_per_second
    report.line(f"\n== input pipeline (TFRecord read, parse, dynamic masking), batch {hp.train_batch_size} ==")
    report.line(f"{rate:,.0f} tokens/s alone; the fastest train step measured consumes "
                f"{consumed_tokens_per_second:,.0f} tokens/s")
    report.line(f"RATIO input pipeline rate / train step consumption = {ratio:.1f}")
    return ratio
