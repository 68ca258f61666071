import sys

from harness.workflow.forkserver import run_via_server  # standard library only: a forwarded run stays light

status = None if sys.argv[1:2] == ["serve"] else run_via_server(sys.argv[1:])
if status is None:
    from harness.cli.main import main

    status = main()
sys.exit(status)
