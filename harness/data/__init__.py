"""Text and tasks: the generated world (`world/`), the pre-training corpus (`corpus`), the
tokenizer and vocabularies, token streams and batches (`batches`), and the tasks' records
(`tasks`, `task_data`, released files through `task_files`, instructions)."""
