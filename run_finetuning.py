"""Fine-tunes a pretrained ConvBERT on GLUE, SQuAD, MRQA or chunking: see convbert_tf/cli/finetune.py.

  python run_finetuning.py --data_dir=data --model_name=convbert_small \
      --hparams='{"model_size": "small", "task_names": ["cola"]}'
"""

from convbert_tf.cli import finetune

if __name__ == "__main__":
    finetune.run("run_finetuning.py")
