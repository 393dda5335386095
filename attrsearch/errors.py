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
