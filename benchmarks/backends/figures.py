"""The arithmetic of the cross-backend figures and their side-by-side table (pure Python).

Legend: B batch, T length, P masked positions per sequence.
"""

import statistics

BACKENDS = ("tensorflow", "jax", "torch")
DEVICES = ("cpu", "gpu")
MODELS = ("ConvBERT", "BERT")
# batch x length per device when --batch / --seq_length are not given (the shapes).
DEFAULT_SHAPES = {"gpu": (128, 128), "cpu": (16, 128)}


def masked_positions(seq_length: int, mask_prob: float = 0.15) -> int:
    """P as the pretraining hparams derive it (int((mask_prob + 0.005) T): 19 at T = 128)."""
    return int((mask_prob + 0.005) * seq_length)


def tokens_per_second(batch: int, seq_length: int, seconds_per_step: float) -> float:
    """Every position of the batch counts as a token, padded or not."""
    if seconds_per_step <= 0:
        raise ValueError(f"a step time must be positive, got {seconds_per_step}")
    return batch * seq_length / seconds_per_step


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops_per_s: float) -> float:
    """Model FLOP utilisation: achieved FLOP/s over the measured matmul peak (a fraction)."""
    if peak_flops_per_s <= 0:
        raise ValueError(f"the matmul peak must be positive, got {peak_flops_per_s}")
    return tokens_per_s * flops_per_token / peak_flops_per_s


def matmul_flops(n: int, calls: int = 1) -> float:
    """FLOPs of `calls` products of two n x n matrices (2 n^3 each)."""
    return calls * 2.0 * n ** 3


def time_ratio_against_flops(convbert_seconds: float, bert_seconds: float, convbert_flops: float,
                             bert_flops: float) -> tuple:
    """(ConvBERT/BERT step time, ConvBERT/BERT FLOPs, whether the time ratio is within the FLOP ratio)."""
    time_ratio, flop_ratio = convbert_seconds / bert_seconds, convbert_flops / bert_flops
    return time_ratio, flop_ratio, time_ratio <= flop_ratio


def median(values) -> float:
    return statistics.median(values)


def rows(times: dict, flops_per_token: dict, batch: int, seq_length: int, peak: float) -> dict:
    """{model: {variant: {tokens_per_s, ms, mfu}}} from {(model, variant): [seconds per step]}."""
    table = {}
    for (model, variant), seconds in times.items():
        rate = tokens_per_second(batch, seq_length, median(seconds))
        table.setdefault(model, {})[variant] = {"tokens_per_s": rate, "ms": 1e3 * median(seconds),
                                                "mfu": mfu(rate, flops_per_token[model], peak)}
    return table


def median_of_rounds(results: list) -> dict:
    """One worker's RESULT dicts from several rounds -> one, each row's figures the medians."""
    merged = {key: value for key, value in results[0].items() if key != "sizes"}
    merged["sizes"] = []
    for i, size in enumerate(results[0]["sizes"]):
        rows = {model: {variant: {key: median([r["sizes"][i]["rows"][model][variant][key] for r in results])
                                  for key in row}
                        for variant, row in variants.items()}
                for model, variants in size["rows"].items()}
        merged["sizes"].append(dict(size, rows=rows))
    return merged


def side_by_side(results: list) -> list:
    """Markdown rows: source, model, variant (eager, compiled, tf.function), tokens/s, ms/step, MFU.

    `results` are [{"source": ..., "rows": {model: {variant: {"tokens_per_s", "ms", "mfu"}}}}].
    """
    lines = ["| source | model | step | tokens/s | ms/step | MFU |", "|---|---|---|---|---|---|"]
    for result in results:
        for model, variants in result["rows"].items():
            for variant, row in variants.items():
                lines.append(f"| {result['source']} | {model} | {variant} | {row['tokens_per_s']:,.0f} | "
                             f"{row['ms']:,.1f} | {100 * row['mfu']:.1f} % |")
    return lines
