"""Hugging Face's torch ConvBERT and BERT of the same size, the same MLM step (no Keras).

  python -m benchmarks.backends.hf_worker '<json of the options>'

Both models are built from a config (random weights, nothing downloaded). The step runs the
encoder, gathers the P masked positions and applies the model's own MLM head there (ConvBERT:
generator_predictions + generator_lm_head; BERT: cls), as this project's MaskedLMHead does,
then cross-entropy and torch.optim.AdamW; eager and under torch.compile; bf16 by autocast.
BERT here has no embedding projection (E = D), as Hugging Face's BERT has none.
Prints a table per size and a last line `RESULT {json}` (cli.py reads it).
"""

import json
import sys

from benchmarks.backends import figures
from benchmarks.backends.worker import synthetic_batch, timed


def describe(config, bert, seq_length: int, predictions: int) -> dict:
    """{model: {"kwargs": Hugging Face config kwargs, "flops": train FLOPs per token}} of one size.

    Called by worker.py (which has convbert_tf), so that this process imports neither convbert_tf
    nor TensorFlow (TensorFlow loaded beside torch slows torch's first seconds of steps).
    """
    from convbert_tf import flops
    bert = bert.replace(embedding_size=None)  # Hugging Face's BERT has no embedding projection
    shared = dict(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                  num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
                  intermediate_size=config.intermediate_size, hidden_act=config.hidden_act,
                  hidden_dropout_prob=config.hidden_dropout_prob,
                  attention_probs_dropout_prob=config.attention_probs_dropout_prob,
                  max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
                  initializer_range=config.initializer_range)
    convbert = dict(shared, embedding_size=config.resolved_embedding_size, head_ratio=config.head_ratio,
                    conv_kernel_size=config.conv_kernel_size, num_groups=config.linear_groups)
    return {"ConvBERT": {"kwargs": convbert, "flops": flops.mlm_step_flops(config, seq_length, predictions)},
            "BERT": {"kwargs": shared, "flops": flops.mlm_step_flops(bert, seq_length, predictions)}}


def hf_model(kwargs: dict, bert: bool):
    import transformers
    if bert:
        return transformers.BertForMaskedLM(transformers.BertConfig(**kwargs))
    return transformers.ConvBertForMaskedLM(transformers.ConvBertConfig(**kwargs))


def mlm_loss(model, batch: dict, bert: bool):
    import torch
    encoder = model.bert if bert else model.convbert
    states = encoder(input_ids=batch["input_ids"], attention_mask=batch["input_mask"],
                     token_type_ids=batch["segment_ids"]).last_hidden_state  # [B, T, D]
    positions = batch["masked_lm_positions"]
    gathered = torch.gather(states, 1, positions[..., None].expand(-1, -1, states.shape[-1]))  # [B, P, D]
    logits = model.cls(gathered) if bert else model.generator_lm_head(model.generator_predictions(gathered))
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), batch["masked_lm_ids"].flatten())


def hf_step(kwargs: dict, options: dict, batch: dict, bert: bool, compiled: bool):
    """A callable: one train step of a fresh model; returns the loss as a float (the device waits)."""
    import torch
    torch.manual_seed(0)
    where = torch.device("cuda" if options["device"] == "gpu" else "cpu")
    model = hf_model(kwargs, bert).to(where).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-6)
    data = {k: torch.as_tensor(v, dtype=torch.long, device=where) for k, v in batch.items()}
    autocast = torch.autocast(where.type, dtype=torch.bfloat16, enabled=options["dtype"] == "bfloat16")

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = mlm_loss(model, data, bert)
        loss.backward()
        optimizer.step()
        return loss.detach()

    run = torch.compile(step) if compiled else step
    return lambda: float(run())


def measure_size(options: dict, size: str) -> dict:
    models = options["hf_models"][size]
    b, t, p = options["batch"], options["seq_length"], options["predictions"]
    batch = synthetic_batch(b, t, p, models["ConvBERT"]["kwargs"]["vocab_size"])
    variants = {"eager": False, "compiled": True} if options["torch_compile"] else {"eager": False}
    calls = {(model, variant): hf_step(models[model]["kwargs"], options, batch, model == "BERT", compiled)
             for model in models for variant, compiled in variants.items()}
    times, peak = timed(calls, options, "torch")
    step_flops = {model: models[model]["flops"] for model in models}
    return {"size": size, "peak": peak, "rows": figures.rows(times, step_flops, b, t, peak)}


def main(argv=None):
    options = json.loads((argv or sys.argv[1:])[0])
    try:
        import torch
        import transformers
    except ImportError as e:
        print(f"--compare_hf: skipped, Hugging Face's models need torch and transformers ({e})")
        print("RESULT " + json.dumps({"source": "Hugging Face torch", "skipped": str(e), "sizes": []}))
        return
    torch.set_num_threads(options["threads"])
    results = []
    for size in options["sizes"]:
        measured = measure_size(options, size)
        print(f"\n== Hugging Face torch {transformers.__version__} {options['device']} {options['dtype']}: {size}, "
              f"batch {options['batch']} x {options['seq_length']}; "
              f"matmul peak {measured['peak'] / 1e12:,.3f} TFLOP/s ==")
        for model, variants in measured["rows"].items():
            for variant, row in variants.items():
                print(f"HF {model + ' ' + variant:<23}{row['tokens_per_s']:>12,.0f}{row['ms']:>10.1f}"
                      f"{100 * row['mfu']:>8.1f}")
        results.append(measured)
    print(f"imports tensorflow: {sys.modules.get('tensorflow') is not None}")
    print("RESULT " + json.dumps({"source": "Hugging Face torch", "sizes": results}), flush=True)


if __name__ == "__main__":
    main()
