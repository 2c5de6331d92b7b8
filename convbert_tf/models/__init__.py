"""Models built from the encoder: the networks of a run, without their checkpoints or training loop.

  electra.py         generator sizing, the generator and its MLM head, the discriminator head, and
                     ElectraPretrainer, which takes those networks built
  electra_losses.py  the ELECTRA objective's math: Gumbel-max sampling, the MLM and discriminator
                     losses, the metric sums of a step
  finetuning.py      FinetuningModel: the encoder with one head per task (built through the Task classes)

May import config, encoder, layers, ops, pretraining.masking and the Task base class; never checkpoints or the training
loops. Imported by checkpoints (to build what a checkpoint holds), the training loops, export and tests.
"""
