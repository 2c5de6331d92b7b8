"""Pretrains ConvBERT with ELECTRA's replaced-token detection: see convbert_tf/cli/pretrain.py.

  python run_pretraining.py --data_dir=data --model_name=convbert_small \
      --hparams='{"model_size": "small"}'
"""

from convbert_tf.cli import pretrain

if __name__ == "__main__":
    pretrain.run("run_pretraining.py")
