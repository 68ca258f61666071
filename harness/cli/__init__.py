"""`python -m harness`: the stages' command line built from one table (`main`), and the
developer tools apart from the stages: throughput (`bench`), where a run's time went
(`timings`), and the paper profile's stand-ins (`paper_toy`)."""
