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
