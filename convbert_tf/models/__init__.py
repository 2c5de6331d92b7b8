"""The networks built from the encoder, apart from the code that converts or loads checkpoints.

electra.py: generator sizing, the generator and its heads, and the ELECTRA pretrainer taking built
networks. finetuning.py: the fine-tuning model, the encoder with one head per task.

May be imported by the runs, the checkpoint code and the export; imports the encoder, the layers
and (finetuning.py) the Task base class of `finetuning.tasks`, never a run or a checkpoint module.
"""
