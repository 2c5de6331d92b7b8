"""The FLOP counter the benchmarks use, which lives in `convbert_tf.flops` (re-exported here)."""

from convbert_tf.flops import (attention_layer_flops, electra_step_flops, encoder_macs, inference_flops,
                               layer_macs, mlm_head_macs, mlm_step_flops)

__all__ = ["attention_layer_flops", "electra_step_flops", "encoder_macs", "inference_flops", "layer_macs",
           "mlm_head_macs", "mlm_step_flops"]
