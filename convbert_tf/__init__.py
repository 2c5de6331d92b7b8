"""convbert_tf: ConvBERT (span-based dynamic convolution BERT) on TensorFlow 2 and Keras 3."""
