"""Fine-tuning data and scoring: task registry, readers, featurization, QA post-processing, metrics, outputs."""
