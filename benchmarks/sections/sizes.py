"""Per model size: train steps (MLM and ELECTRA), inference and memory of ConvBERT and BERT.

Legend: B batch, T length, D hidden.
"""

import keras
import numpy as np
import tensorflow as tf

from benchmarks.machine import MatmulProbe, mib, step_peak_bytes
from benchmarks.options import POLICIES, STEPS_PER_CALL, Options, Shapes
from benchmarks.timing import Report, interleaved, median, spread
from benchmarks.workloads import TrainStep, Workspace, bert_of
from convbert_tf import ConvBertEncoder, flops


def size_section(size: str, workspace: Workspace, options: Options, shapes: Shapes, report: Report,
                 dtype: str):
    """Train steps (MLM and ELECTRA), inference and memory of ConvBERT and BERT of one size."""
    hp = {(model, objective): workspace.hparams(size, shapes, options, bert=model == "BERT",
                                                 electra=objective == "electra")
          for model in ("ConvBERT", "BERT") for objective in ("mlm", "electra")}
    config = hp["ConvBERT", "mlm"].model_config()
    report.line(f"\n== {size if not options.quick else 'tiny (--quick)'}: hidden {config.hidden_size}, "
                f"{config.num_hidden_layers} layers, E {config.resolved_embedding_size}, "
                f"G {config.linear_groups}, {dtype}, span conv '{options.conv_implementation}', "
                f"batch {shapes.train_batch} x {shapes.seq_length} ==")
    train = _train_section(size, hp, workspace, options, shapes, report, dtype)
    inference = _inference_section(size, hp, config, workspace, options, shapes, report, dtype)
    return dict(train, **inference, config=config)


def _train_flops(hp, shapes: Shapes) -> dict:
    """(model, objective) -> train FLOPs per token."""
    predictions = hp["ConvBERT", "mlm"].predictions_per_seq
    train_flops = {}
    for (model, objective), h in hp.items():
        cfg = h.model_config()
        train_flops[model, objective] = (flops.mlm_step_flops(cfg, shapes.seq_length, predictions)
                                         if objective == "mlm" else
                                         flops.electra_step_flops(cfg, h.generator_config(), shapes.seq_length,
                                                                  predictions))
    return train_flops


def _train_section(size, hp, workspace: Workspace, options: Options, shapes: Shapes, report: Report, dtype: str):
    """The train steps interleaved with a matmul probe: the table and the ConvBERT/BERT ratios."""
    train_flops = _train_flops(hp, shapes)
    # Train steps, interleaved: ConvBERT, BERT and the ConvBERT reference (unfold) for the MLM step.
    steps = {}
    for (model, objective), h in hp.items():
        steps[f"{model} {objective}"] = TrainStep(h, options, dtype)
        if options.jit_compile:
            steps[f"{model} {objective} XLA"] = TrainStep(h, options, dtype, jit_compile=True)
    if options.conv_implementation != "unfold":
        reference_hp = workspace.hparams(size, shapes, options, bert=False, electra=False,
                                         conv_implementation="unfold")
        steps["ConvBERT mlm [unfold]"] = TrainStep(reference_hp, options, dtype)
    probe = MatmulProbe(dtype, options)
    times = interleaved(dict(steps, **{"matmul peak": probe}), options.repeats)
    peak = probe.flops_per_second(times.pop("matmul peak"))
    peaks = {name: step_peak_bytes(lambda step=step: step(1), options.device) for name, step in steps.items()}
    report.line(f"{dtype} matmul peak measured among these steps: {peak / 1e9:,.1f} GFLOP/s")

    def tokens_per_second(name):
        return STEPS_PER_CALL * steps[name].tokens_per_step / median(times[name])

    report.line(f"{'train step':<28}{'tokens/s':>10}{'ms/step':>10}{'GFLOP/token':>13}{'TFLOP/s':>9}"
                f"{'% peak':>8}{'step peak MiB':>15}")
    for name in steps:
        model, objective = name.split()[:2]
        rate = tokens_per_second(name)
        achieved = rate * train_flops[model, objective]
        report.line(f"{name:<28}{rate:>10,.0f}{1e3 * median(times[name]) / STEPS_PER_CALL:>8.0f}"
                    f" {spread(times[name]):>4}{train_flops[model, objective] / 1e9:>9.3f}"
                    f"{achieved / 1e12:>9.3f}{100 * achieved / peak:>8.1f}{mib(peaks[name]):>15}")
    ratios = {}
    for objective in ("mlm", "electra"):
        time_ratio = median(times[f"ConvBERT {objective}"]) / median(times[f"BERT {objective}"])
        flop_ratio = train_flops["ConvBERT", objective] / train_flops["BERT", objective]
        ratios[objective] = (time_ratio, flop_ratio)
        report.line(f"RATIO {size} {objective} step time ConvBERT/BERT = {time_ratio:.2f} "
                    f"(FLOP ratio {flop_ratio:.2f})")
        if options.jit_compile:
            for model in ("ConvBERT", "BERT"):
                report.line(f"RATIO {size} {objective} {model} step time XLA/no-XLA = "
                            f"{median(times[f'{model} {objective} XLA']) / median(times[f'{model} {objective}']):.2f}")
    if "ConvBERT mlm [unfold]" in steps:
        report.line(f"RATIO {size} mlm step time ConvBERT[{options.conv_implementation}]/ConvBERT[unfold] = "
                    f"{median(times['ConvBERT mlm']) / median(times['ConvBERT mlm [unfold]']):.2f}")
    fraction = {name: tokens_per_second(name) * train_flops[tuple(name.split()[:2])] / peak for name in steps}
    max_tokens_per_second = max(tokens_per_second(name) for name in steps)
    return {"ratios": ratios, "fraction": fraction, "max_tokens_per_second": max_tokens_per_second}


def _inference_section(size, hp, config, workspace: Workspace, options: Options, shapes: Shapes, report: Report,
                       dtype: str):
    """Batch-1 latency and batch-32 throughput of the encoder alone, ConvBERT against BERT."""
    infer = {}
    policy = POLICIES[dtype]
    encoders = {}
    for model in ("ConvBERT", "BERT"):
        with tf.device(options.device):
            keras.utils.set_random_seed(0)
            encoders[model] = ConvBertEncoder(hp[model, "mlm"].model_config(), dtype=policy)
    rng = np.random.default_rng(0)

    def batch_of(size_):
        ids = rng.integers(5, workspace.vocab_size, size=(size_, shapes.seq_length)).astype(np.int32)
        return {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids), "segment_ids": tf.zeros_like(ids)}

    inputs = {"latency": batch_of(shapes.latency_batch), "throughput": batch_of(shapes.throughput_batch)}
    forward = {}
    for model, encoder in encoders.items():
        forward[model] = tf.function(lambda batch, encoder=encoder: encoder(batch, training=False)["sequence_output"])
        for kind, batch in inputs.items():
            inner = 5 if kind == "latency" else 1
            infer[f"{model} {kind}"] = (lambda f=forward[model], b=batch, n=inner:
                                        [f(b) for _ in range(n)][-1].numpy())
    with tf.device(options.device):
        infer_times = interleaved(infer, options.repeats)
        infer_peak = {name: step_peak_bytes(fn, options.device) for name, fn in infer.items()}
    report.line(f"{'inference':<28}{'value':>22}{'peak MiB':>10}")
    for model in ("ConvBERT", "BERT"):
        latency = median(infer_times[f"{model} latency"]) / 5
        rate = shapes.throughput_batch * shapes.seq_length / median(infer_times[f"{model} throughput"])
        report.line(f"{model + f' latency {shapes.latency_batch}x{shapes.seq_length}':<28}"
                    f"{1e3 * latency:>16.1f} ms   {mib(infer_peak[f'{model} latency']):>8}")
        report.line(f"{model + f' throughput {shapes.throughput_batch}x{shapes.seq_length}':<28}"
                    f"{rate:>14,.0f} tok/s{mib(infer_peak[f'{model} throughput']):>10}")
    for kind in ("latency", "throughput"):
        report.line(f"RATIO {size} inference {kind} time ConvBERT/BERT = "
                    f"{median(infer_times[f'ConvBERT {kind}']) / median(infer_times[f'BERT {kind}']):.2f} "
                    f"(FLOP ratio {flops.inference_flops(config, shapes.seq_length) / flops.inference_flops(bert_of(config), shapes.seq_length):.2f})")
    return {"encoder": encoders["ConvBERT"], "forward": forward["ConvBERT"], "latency_batch": inputs["latency"]}
