"""Evaluation of fine-tuned students: multiple choice through lm-eval."""
