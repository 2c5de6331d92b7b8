"""Tokenizer, WordPiece vocabulary learning and the pretraining data builder."""
