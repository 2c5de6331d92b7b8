"""The fine-tuning tasks as classes: a Task owns its data reading, features, head, loss, predictions,
scorer, output files and serving signatures.

base.py: the Task base class and HeadOptions. glue.py, glue_kinds.py: GLUE (classification, and
STS-B regression). qa.py: extractive QA; squad.py, mrqa.py: its file formats. chunk.py: CoNLL-2000
chunking. registry.py: the table of tasks and `get_task`.

Imported by the fine-tuning run, the model (`models.finetuning`: Task methods build and run the
heads; it imports only `tasks.base`) and the export. Imports `finetuning.examples`, `finetuning.qa`,
`finetuning.scorers`, `finetuning.serving`, the head layers and `convbert_tf.io`; never the run.
"""
