"""One file per report, or per family of reports sharing their inputs (Tables 1 and 6): its
declaration, its config section and its renderer (harness/workflow/report.py)."""
