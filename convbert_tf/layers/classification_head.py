"""ClassificationHead: the original's fine-tuning head on the [CLS] state (no pooler).

Legend: B batch, D hidden, C classes (1 for regression).
"""

import keras

from convbert_tf import ops


@keras.saving.register_keras_serializable(package="convbert_tf")
class ClassificationHead(keras.layers.Layer):
    """logits = Dense_C(dropout(cls_state)) (ELECTRA's
    `finetune/classification/classification_tasks.py`; scope `task_specific/<task>/dense`).

    Dropout 0.1 is hard-coded in the original (not read from the config); the dense layer uses
    glorot-uniform initialization like every original task head. There is no pooler.

    Args:
      num_classes: C; 1 for regression.
      dropout_rate: dropout on the [CLS] state.

    Call args:
      cls_state: [B, D]. training: dropout switch.

    Returns:
      [B, C] logits, or [B] predictions when num_classes == 1 (float32 under mixed precision).
    """

    def __init__(self, num_classes, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(num_classes, dtype=self.dtype_policy, name="dense")

    def build(self, cls_shape):
        self.dense.build(cls_shape)

    def call(self, cls_state, training=None):
        logits = ops.upcast_half(self.dense(ops.dropout(self.dropout, cls_state, training)))  # [B, C]
        return logits[:, 0] if self.num_classes == 1 else logits

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, dropout_rate=self.dropout_rate)
        return config
