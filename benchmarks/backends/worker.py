"""One backend's train steps, ConvBERT against BERT (run by cli.py with KERAS_BACKEND set).

  KERAS_BACKEND=jax python -m benchmarks.backends.worker '<json of the options>'

Prints a table per size and a last line `RESULT {json}`. The options are cli.py's flags:
backend, device, dtype, sizes, batch, seq_length, steps, warmup, quick, threads, jit_compile,
torch_compile.
"""

import json
import sys

import numpy as np

from benchmarks.backends import figures
from benchmarks.backends.peak import CALLS, matmul_probe, probe_side
from benchmarks.options import QUICK_OVERRIDES, QUICK_VOCAB
from benchmarks.timing import interleaved


def size_config(size: str, quick: bool):
    """The preset of `size`, or with --quick the tiny model of benchmarks/options.py."""
    from convbert_tf import ConvBertConfig
    config = ConvBertConfig.from_preset(size)
    return config.replace(**QUICK_OVERRIDES, embedding_size=32, vocab_size=QUICK_VOCAB) if quick else config


def bert_config(config):
    """BERT of the same size from the same code: the ablation ladder's first rung."""
    from convbert_tf.ablation.variants import LADDER
    return config.replace(**LADDER["bert"])


def synthetic_batch(batch: int, seq_length: int, predictions: int, vocab_size: int, seed: int = 0) -> dict:
    """int32 NumPy arrays: random ids, full masks, P distinct masked positions per row."""
    rng = np.random.default_rng(seed)
    positions = np.sort(np.stack([rng.choice(np.arange(1, seq_length), predictions, replace=False)
                                  for _ in range(batch)]), axis=1)
    return {"input_ids": rng.integers(5, vocab_size, (batch, seq_length)).astype(np.int32),
            "input_mask": np.ones((batch, seq_length), np.int32),
            "segment_ids": np.zeros((batch, seq_length), np.int32),
            "masked_lm_positions": positions.astype(np.int32),
            "masked_lm_ids": rng.integers(5, vocab_size, (batch, predictions)).astype(np.int32)}


def device_problem(options: dict):
    """None when the backend sees the device asked for; else what is wrong, in words."""
    backend, device = options["backend"], options["device"]
    if device == "cpu":
        return None
    if backend == "jax":
        import jax
        found = {d.platform for d in jax.devices()}
        return None if "gpu" in found else f"jax sees no GPU (platforms {sorted(found)}); install a CUDA jaxlib"
    if backend == "torch":
        import torch
        return None if torch.cuda.is_available() else "torch.cuda.is_available() is False (a CPU-only torch?)"
    from benchmarks.machine import device_problem as tensorflow_problem
    return tensorflow_problem("/GPU:0")


def keras_steps(options: dict, config, batch: dict) -> dict:
    """{variant: step callable} of one model on the jax or torch backend."""
    from benchmarks.backends import keras_step
    model, optimizer = keras_step.build(config, options["dtype"], batch)
    if options["backend"] == "jax":
        return {"compiled": keras_step.jax_step(model, optimizer, batch)}
    steps = {"eager": keras_step.torch_step(model, optimizer, batch, compiled=False)}
    if options["torch_compile"]:
        steps["compiled"] = keras_step.torch_step(model, optimizer, batch, compiled=True)
    return steps


def tensorflow_steps(options: dict, size: str, workspace, model: str) -> dict:
    """{variant: step callable} of the production train loop (tf.function, and XLA with jit_compile)."""
    from benchmarks.options import Options, Shapes
    from benchmarks.workloads import TrainStep
    device = "/GPU:0" if options["device"] == "gpu" else "/CPU:0"
    run = Options(sizes=(size,), dtype=options["dtype"], device=device, threads=options["threads"],
                  quick=options["quick"])
    hp = workspace.hparams(size, Shapes(options["batch"], options["seq_length"]), run, bert=model == "BERT",
                           electra=False, max_predictions_per_seq=options["predictions"])
    variants = {"tf.function": False, "compiled": True} if options["jit_compile"] else {"tf.function": False}
    steps = {}
    for name, jit in variants.items():
        train_step = TrainStep(hp, run, options["dtype"], jit_compile=jit)
        steps[name] = lambda train_step=train_step: train_step(1)
    return steps


def timed(calls: dict, options: dict, backend: str) -> tuple:
    """({name: [seconds]}, matmul peak FLOP/s): the calls interleaved with a matmul probe."""
    n = probe_side(options["device"], options["quick"])
    calls = dict(calls, peak=matmul_probe(backend, options["device"], options["dtype"], n))
    times = interleaved(calls, options["steps"], warmup=options["warmup"])
    return times, figures.matmul_flops(n, CALLS) / figures.median(times.pop("peak"))


def measure_size(options: dict, size: str, workspace=None) -> dict:
    """Both models' steps and the matmul probe, interleaved: {model: {variant: figures}}, ratios."""
    from convbert_tf import flops
    config = size_config(size, options["quick"])
    configs = {"ConvBERT": config, "BERT": bert_config(config)}
    b, t, p = options["batch"], options["seq_length"], options["predictions"]
    batch = synthetic_batch(b, t, p, config.vocab_size)
    calls = {}
    for model, cfg in configs.items():
        steps = (tensorflow_steps(options, size, workspace, model) if options["backend"] == "tensorflow"
                 else keras_steps(options, cfg, batch))
        calls.update({(model, variant): step for variant, step in steps.items()})
    times, peak = timed(calls, options, options["backend"])
    step_flops = {model: flops.mlm_step_flops(cfg, t, p) for model, cfg in configs.items()}
    rows = figures.rows(times, step_flops, b, t, peak)
    ratios = {variant: figures.time_ratio_against_flops(
        figures.median(times["ConvBERT", variant]), figures.median(times["BERT", variant]),
        step_flops["ConvBERT"], step_flops["BERT"]) for variant in rows["ConvBERT"]}
    from benchmarks.backends.hf_worker import describe
    return {"size": size, "peak": peak, "rows": rows, "ratios": ratios,
            "hf_models": describe(config, configs["BERT"], t, p),
            "config": f"hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
                      f"E {config.resolved_embedding_size}, G {config.linear_groups}"}


def print_size(options: dict, measured: dict):
    size = measured["size"] if not options["quick"] else "tiny (--quick)"
    print(f"\n== {options['backend']} {options['device']} {options['dtype']}: {size}, {measured['config']}, "
          f"batch {options['batch']} x {options['seq_length']}, P {options['predictions']}, median of "
          f"{options['steps']} steps ==")
    print(f"matmul peak ({options['dtype']}) measured among these steps: {measured['peak'] / 1e12:,.3f} TFLOP/s")
    print(f"{'train step':<26}{'tokens/s':>12}{'ms/step':>10}{'MFU %':>8}")
    for model, variants in measured["rows"].items():
        for variant, row in variants.items():
            print(f"{model + ' ' + variant:<26}{row['tokens_per_s']:>12,.0f}{row['ms']:>10.1f}{100 * row['mfu']:>8.1f}")
    for variant, (time_ratio, flop_ratio, within) in measured["ratios"].items():
        print(f"RATIO {measured['size']} {options['backend']} {variant} step time ConvBERT/BERT = {time_ratio:.2f} "
              f"(FLOP ratio {flop_ratio:.2f}; {'within' if within else 'above'} it)")


def prepare(options: dict):
    """Threads and the backend check; a workspace of records for the tensorflow production loop."""
    import keras
    if keras.backend.backend() != options["backend"]:
        sys.exit(f"worker: KERAS_BACKEND gives {keras.backend.backend()!r}, not {options['backend']!r}")
    problem = device_problem(options)
    if problem:
        sys.exit(f"benchmarks.run: --backend={options['backend']} --device={options['device']}: {problem}")
    if options["backend"] == "torch":
        import torch
        torch.set_num_threads(options["threads"])
    if options["backend"] != "tensorflow":
        return None
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(options["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(options["threads"])
    from benchmarks.options import Options, Shapes
    from benchmarks.workloads import Workspace
    return Workspace(Options(quick=options["quick"]), Shapes(options["batch"], options["seq_length"]))


def main(argv=None):
    options = json.loads((argv or sys.argv[1:])[0])
    if options["backend"] != "tensorflow":
        # The GPU machines have no TensorFlow: block it, so a CPU run proves the step needs none.
        sys.modules.setdefault("tensorflow", None)
    workspace = prepare(options)
    results = []
    try:
        for size in options["sizes"]:
            measured = measure_size(options, size, workspace)
            print_size(options, measured)
            results.append(measured)
    finally:
        if workspace is not None:
            workspace.close()
    print(f"imports tensorflow: {sys.modules.get('tensorflow') is not None}")
    print("RESULT " + json.dumps({"source": f"this project, {options['backend']}", "sizes": results,
                                  "tensorflow_imported": "tensorflow" in sys.modules}), flush=True)


if __name__ == "__main__":
    main()
