"""The `diffclass` command. Each module holds one command group; each command parses its options, calls one
library function and prints. Heavy libraries are imported inside the commands, so help is instant."""

from __future__ import annotations

import errno
import logging
import signal
import sys

from typer import Abort

try:  # typer >= 0.2x bundles its own copy of click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click.exceptions import UsageError

from diffclass.cli import (  # noqa: F401  (each adds its commands)
    anchors,
    compress,
    didicm,
    evaluate,
    explain,
    fit,
    listing,
    models,
    robustness,
    serve,
    trees,
)
from diffclass.cli.app import DEBUG, app
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
    previous = signal.signal(signal.SIGINT, _interrupted)  # typer makes Ctrl-C a silent exit 130: say what is kept
    try:
        code = app(standalone_mode=False)  # usage errors come back as exceptions, to be said in one line
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "diffclass"
        if not exc.format_message():  # a group called with nothing to do: its help
            app([*command.split()[1:], "--help"])
        print_error(f"{exc.format_message()} (see {command} --help)")
        sys.exit(2)
    except Abort:
        sys.exit(130)
    except DiffclassError as exc:
        print_error(str(exc))
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            _unexpected(exc)
        where = f" writing {exc.filename}" if exc.filename else ""
        print_error(f"{exc.strerror}{where}: what was written before is kept; free some space and rerun to resume")
        sys.exit(2)
    except Exception as exc:
        _unexpected(exc)
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.exit(code if isinstance(code, int) else 0)


def _unexpected(exc: Exception) -> None:
    """A bug, not bad input: one line, and the traceback where it can be read."""
    if DEBUG["traceback"]:
        raise exc
    print_error(f"unexpected {type(exc).__name__}: {exc} (full traceback in {_save_traceback()}; --debug shows it)")
    sys.exit(1)


def _interrupted(signum, frame) -> None:
    print_error("interrupted; records already written are kept, and a rerun resumes from them")
    raise KeyboardInterrupt


def _save_traceback() -> str:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="diffclass-traceback-", suffix=".txt", delete=False) as handle:
        traceback.print_exc(file=handle)
    return handle.name


__all__ = ["app", "main"]
