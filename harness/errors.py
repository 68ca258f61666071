"""The one exception type the CLI turns into a one-line message."""


class HarnessError(Exception):
    """Bad input or a broken precondition: unknown name, missing file, NaN loss.

    The CLI prints `error: <message>` and exits with status 2; anything else
    escaping a stage is a bug and keeps its traceback.
    """


def first_line(e: BaseException, limit: int = 200) -> str:
    """A library exception's message cut to its first line (some run to pages), or its type."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:limit]
