"""The `diffclass` command. Each module holds one command group; each command parses its options, calls one
library function and prints. Heavy libraries are imported inside the commands, so help is instant."""

from __future__ import annotations

import logging
import sys

from diffclass.cli import didicm, evaluate, listing, models, trees  # noqa: F401  (each adds its commands)
from diffclass.cli.app import app
from diffclass.errors import DiffclassError
from diffclass.progress import err_console, print_error


class _ConsoleHandler(logging.Handler):
    """The library reports through `logging`; the command line shows it on stderr, errors in the error style."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            print_error(message)
        else:
            err_console.print(message, highlight=False, markup=False, soft_wrap=True)


def main() -> None:
    logger = logging.getLogger("diffclass")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        app()
    except DiffclassError as exc:
        print_error(str(exc))
        sys.exit(2)


__all__ = ["app", "main"]
