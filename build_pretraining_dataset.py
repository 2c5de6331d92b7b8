"""Builds ConvBERT pretraining TFRecords from text files: see convbert_tf/cli/build_dataset.py.

  python build_pretraining_dataset.py --corpus_dir=corpus/ --output_dir=pretrain_tfrecords/ \
      --vocab_file=vocab.txt --num_processes=4
"""

from convbert_tf.cli import build_dataset

if __name__ == "__main__":
    build_dataset.run("build_pretraining_dataset.py")
