"""Rendering of the paper's tables from evaluation JSON (the generated tables live here too)."""
