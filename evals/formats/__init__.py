"""Multiple-choice benchmarks' released files, one reader per format (`format:` of a `kind: file`
task). A module here is a format named by its file: `read(path) -> [{query, choices, gold}]`,
with lm-eval's prompt for the task (its task YAMLs at lm-eval 0.4), so a profile can run the real
tasks from local files when the hub is out of reach. Adding a format is adding its file
(harness/data/task_files.py finds it; every record it returns is checked there)."""
