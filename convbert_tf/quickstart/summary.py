"""The closing table of a finished quickstart: where every artifact is, and how the losses fell."""

from __future__ import annotations

from convbert_tf.quickstart.paths import Paths, display
from convbert_tf.quickstart.steps import format_took


def _pretraining_lines(summary: dict) -> list:
    p = summary["pretraining"]
    lines = []
    if p.get("mlm_loss") and p.get("disc_loss"):
        lines.append(f"  pretraining  {p['steps']} steps: generator MLM loss {p['mlm_loss']['first']:.3f} -> "
                     f"{p['mlm_loss']['last']:.3f}, discriminator loss {p['disc_loss']['first']:.3f} -> "
                     f"{p['disc_loss']['last']:.3f}")
    return lines + [
        f"  checkpoint   {display(p['checkpoint'] or p['model_dir'])}",
        f"  encoder      {display(p['saved_model'])}/  (SavedModel: serving_default over ids, serve_text over raw text)",
    ]


def _finetuning_lines(summary: dict, paths: Paths) -> list:
    f = summary["finetuning"]
    loss = f.get("loss")
    return [
        f"  fine-tuning  {f['steps']} steps" + (f", loss {loss['first']:.3f} -> {loss['last']:.3f}" if loss else "")
        + f"; dev accuracy {f['dev_accuracy']:.1f}% (majority class {f['chance_accuracy']:.1f}%)",
        f"  classifier   {display(f['saved_model'])}/",
        f"  predictions  {display(paths.predictions)}  (try: python {display(paths.predict_script)} \"your sentence\")",
        f"  plot         {display(paths.plot)}",
    ]


def print_summary(summary: dict, paths: Paths, took: float) -> None:
    d = summary["data"]
    lines = [
        f"\nDone in {format_took(took)}. Everything is in {display(paths.root)}/ (summary: {display(paths.summary)})",
        f"  corpus       {display(paths.corpus)}/  ({summary['corpus']['files']} files, "
        f"{summary['corpus']['paragraphs']} paragraphs)",
        f"  vocab        {display(paths.vocab)}  ({d['vocab_tokens']} WordPiece tokens)",
        f"  records      {display(paths.records)}/  ({d['examples']} examples)",
    ]
    lines += _pretraining_lines(summary) + _finetuning_lines(summary, paths)
    print("\n".join(lines), flush=True)
