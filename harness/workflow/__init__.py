"""Planning the DAG: the config (`config`, its reference), the grid of rows, paths and config
slices (`grid`), reports and their records (`report`, `records`), the commands the rules run
(`commands`) and the fork server their jobs start from. No torch at module level: the
Snakefile imports this package to plan."""
