"""One file per report (or per few that share their inputs): see reports/plugin.py."""
