"""User-facing errors.

A ``UserError`` is bad input (a config field, a file, a name): the CLI prints its message
as one line and exits with status 2, without a traceback. Anything else is a bug.
"""


class UserError(Exception):
    """Bad input from the user; the message is one line that names the field or file."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty), for a
    one-line error that quotes the cause."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class UserErrors(UserError):
    """Several bad inputs found in one pass (a sweep's pre-flight): a header line, then one indented line
    per problem, each one line that names its field or file. Caught as a ``UserError`` (exit status 2)."""

    def __init__(self, header: str, problems: list[str]):
        Exception.__init__(self, "\n  ".join(" ".join(str(line).split()) for line in (header, *problems)))
        self.problems = [" ".join(str(p).split()) for p in problems]


class DiskFull(OSError):
    """No space left where attrsearch writes ``filename`` (the CLI prints one line naming it, exit 1).
    Raised at the write points (cache entries, checkpoints, results files) after the partial file or
    folder is removed, so nothing half-written stays that a later run could trust."""

    def __init__(self, path: object):
        import errno

        super().__init__(errno.ENOSPC, "no space left on device", str(path))

    def __str__(self) -> str:
        return f"{self.filename}: no space left on device; free space there and run the same command again"


def is_disk_full(err: BaseException, folder: object) -> bool:
    """Whether ``err``, raised while writing into ``folder``, is a full disk: an ``OSError`` ENOSPC or
    EDQUOT, or another error (torch's zip writer raises ``RuntimeError``) while ``folder``'s filesystem
    has less than 64 KiB free."""
    import errno
    import os

    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        st = os.statvfs(str(folder))
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024
