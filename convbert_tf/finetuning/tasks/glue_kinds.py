"""The two kinds of GLUE task: classification (every task but STS-B) and regression (STS-B).

Each owns its labels, loss, predictions, scores and serving outputs; reading, featurization and
the [CLS] head are `glue.GlueTask`'s. Metric names and conventions are the original's (every
metric a percentage except MSE); MRPC and QQP report F1 next to accuracy.

Legend: B batch, C classes.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from convbert_tf.finetuning import scorers
from convbert_tf.finetuning.examples import BadRecord
from convbert_tf.finetuning.tasks.glue import GlueTask


class ClassificationTask(GlueTask):
    """A GLUE classification task: softmax cross-entropy over label_list on the [CLS] state.

    Args (beyond GlueTask's):
      metrics: the metric names `score` reports ("mcc", "accuracy", "f1").
    """

    kind = "classification"

    def __init__(self, name, label_list, layouts, tfds_sources, submission_files, metrics=("accuracy",),
                 double_train=False):
        super().__init__(name, label_list, layouts, tfds_sources, submission_files, double_train)
        self.metrics = tuple(metrics)

    def _parse_label(self, raw):
        if raw not in self.label_list:
            raise BadRecord(f"label {raw!r} is not one of {', '.join(self.label_list)}")
        return raw

    def _tfds_label(self, raw, names, where):
        if int(raw) < 0:
            return None
        if self.label_list == ("0", "1"):
            return str(int(raw))  # 0/1 tasks: TFDS class 1 is GLUE's "1" (also for WNLI)
        return self._parse_tfds_label(names[int(raw)], where)

    def _label_fields(self, label):
        return {"label_id": self.label_list.index(label)}

    def postprocess(self, examples, features, outputs, **options):
        """outputs["logits"]: [N, C]; the arg-max label name of each example."""
        logits = np.asarray(outputs["logits"])
        self._check_aligned(logits, features, examples)
        return [self.label_list[i] for i in np.argmax(logits.reshape(len(features), -1), axis=-1)]

    def score(self, examples, predictions):
        """`metrics` of label names (or ids): cola mcc; mrpc, qqp accuracy and f1; the rest accuracy."""
        self._check_labelled(predictions, examples)
        label_ids = {label: index for index, label in enumerate(self.label_list)}
        predicted = [label_ids[p] if isinstance(p, str) else int(p) for p in predictions]
        gold = [label_ids[example.label] for example in examples]
        metrics = {"mcc": scorers.matthews_corrcoef, "accuracy": scorers.accuracy, "f1": scorers.f1_binary}
        return {name: metrics[name](predicted, gold) for name in self.metrics}

    def per_example_loss(self, features, outputs, options):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(features["label_ids"], outputs["logits"])

    def _label_name(self, prediction) -> str:
        label = self.label_list[prediction] if not isinstance(prediction, str) else prediction
        if label not in self.label_list:
            raise ValueError(f"{self.name}: prediction {prediction!r} is not one of {', '.join(self.label_list)}")
        return label

    def prediction_row(self, example, prediction):
        label = self.label_list[prediction] if not isinstance(prediction, str) else prediction
        return {"guid": example.guid, "prediction": label, "label": example.label}

    def _submission_value(self, prediction):
        return self._label_name(prediction)

    def _predict(self, logits, context):
        probabilities = tf.nn.softmax(logits, -1)  # [B, C]
        label_id = tf.argmax(probabilities, -1, output_type=tf.int32)  # [B]
        return {"probabilities": probabilities, "label_id": label_id, "label": tf.gather(context.labels, label_id)}


class RegressionTask(GlueTask):
    """STS-B: a similarity in [0, 5], trained as y/5 with a squared loss, predicted on the 0-5 scale."""

    kind = "regression"

    def _parse_label(self, raw):
        try:
            value = float(raw)
        except ValueError:
            raise BadRecord(f"label {raw!r} is not a number") from None
        if not math.isfinite(value) or not 0.0 <= value <= 5.0:
            raise BadRecord(f"label {raw!r} is outside the similarity range [0, 5]")
        return value

    def _tfds_label(self, raw, names, where):
        return self._parse_tfds_label(str(float(raw)), where)

    def _label_fields(self, label):
        return {"label_value": float(label) / 5.0}  # STS: (y − 0) / 5, as the original

    def postprocess(self, examples, features, outputs, **options):
        """outputs["logits"]: [N] or [N, 1] on the y/5 scale; each example's similarity on 0-5."""
        logits = np.asarray(outputs["logits"])
        self._check_aligned(logits, features, examples)
        return [5.0 * float(v) for v in logits.reshape(len(features))]  # back to the 0-5 scale

    def score(self, examples, predictions):
        """pearson, spearman and mse of 0-5 predictions."""
        self._check_labelled(predictions, examples)
        gold = [example.label for example in examples]
        return {"pearson": scorers.pearson(predictions, gold), "spearman": scorers.spearman(predictions, gold),
                "mse": scorers.mean_squared_error(predictions, gold)}

    def per_example_loss(self, features, outputs, options):
        return tf.square(outputs["logits"] - features["label_value"])

    def prediction_row(self, example, prediction):
        return {"guid": example.guid, "prediction": float(prediction), "label": example.label}

    def _submission_value(self, prediction):
        value = float(prediction)
        if not math.isfinite(value):
            raise ValueError(f"{self.name}: prediction {prediction!r} is not a finite number")
        return f"{min(max(value, 0.0), 5.0):.3f}"

    def _predict(self, logits, context):
        return {"score": logits * 5.0}  # trained on score / 5
