"""Classifies sentences with the quickstart's fine-tuned ConvBERT; needs only tensorflow and tensorflow_text.

  python <output_dir>/predict.py "working with the with statement is surprisingly elegant" "lambdas are rather cryptic"

The SavedModel tokenizes raw text in its graph; its serving_default signature takes `sentence`
and returns `label` ("1" positive, "0" negative), `label_id` and `probabilities`.

The quickstart copies this file into its output folder and runs the copy there by path, in a
fresh process: it must import nothing of convbert_tf (running it with `python -m` would import
the package), and its default model is the classifier of the output folder it sits in.
"""
import argparse
import json
import os
import sys

# The classifier, relative to the output folder (Paths.classifier of convbert_tf/quickstart/paths.py).
SAVED_MODEL = os.path.join("data", "models", "quickstart", "finetuning_models", "sst_model_1", "saved_model", "sst")
LABEL_NAMES = {"1": "positive", "0": "negative"}


def _arguments(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sentences", nargs="+", help="sentences to classify")
    parser.add_argument("--saved_model", default=os.path.join(here, SAVED_MODEL), help="the SavedModel folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def classify(saved_model: str, sentences) -> list:
    """[{sentence, label, probability}] from the SavedModel's serving_default signature."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)

    model = tf.saved_model.load(saved_model)
    outputs = model.signatures["serving_default"](sentence=tf.constant(sentences))
    return [{"sentence": s, "label": l.decode(), "probability": float(p[int(i)])}
            for s, l, i, p in zip(sentences, outputs["label"].numpy(), outputs["label_id"].numpy(),
                                  outputs["probabilities"].numpy())]


def main(argv=None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _arguments(argv)
    rows = classify(args.saved_model, args.sentences)
    if args.json:
        print(json.dumps({"predictions": rows, "pid": os.getpid(),
                          "imported_convbert_tf": "convbert_tf" in sys.modules}))
        return
    for row in rows:
        print(f"{LABEL_NAMES.get(row['label'], row['label']):8s} {row['probability']:.3f}  {row['sentence']}")


if __name__ == "__main__":
    main()
