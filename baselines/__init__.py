"""Baseline knowledge-transfer methods, one file each."""
