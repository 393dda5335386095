"""The package's messages for a person: every module below the CLI logs to ``attrsearch.<module>``
(``logging.getLogger(__name__)``) instead of printing; the CLI routes them to the console.

``console()`` attaches one handler to the ``attrsearch`` logger: INFO lines go to the *current*
``sys.stdout`` and warnings and errors to ``sys.stderr``, as bare messages (what ``print`` wrote
before), looked up at each record so that redirections made after start-up (pytest's capture, a
``contextlib.redirect_stdout``) still see them. Library users who never call it get Python's usual
logging behaviour: nothing below WARNING unless they configure ``attrsearch`` themselves.
"""

from __future__ import annotations

import logging
import sys

ROOT = "attrsearch"


class _ConsoleHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def console(level: int = logging.INFO) -> logging.Logger:
    """Route ``attrsearch.*`` records of ``level`` and above to the console (idempotent)."""
    logger = logging.getLogger(ROOT)
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger
