"""The ``myoscan`` command: argument parsing only.

Each sub-command lives in its own module ``myoscan.cli.<name>`` exposing

* ``add_parser(subparsers)`` -- create the sub-parser and ``set_defaults(handler=run)``;
* ``run(args) -> int`` -- call the Python API, write outputs, return an exit code.

Sub-command modules import nothing heavy at module level (torch and MONAI are
imported inside ``run``), so ``myoscan --help`` stays fast. ``main`` turns any
:class:`myoscan.errors.MyoscanError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

from myoscan import __version__
from myoscan.errors import MyoscanError

#: Sub-command modules in the order ``myoscan --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "labels",
    "quantify",
    "dixon",
    "stitch",
    "phantom",
    "segment",
    "models",
    "train",
    "annotate",
    "evaluate",
    "agreement",
    "cohort",
    "run",
    "report",
)

log = logging.getLogger("myoscan")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="myoscan",
        description="Automated skeletal-muscle analysis of MRI and CT.",
    )
    parser.add_argument("--version", action="version", version=f"myoscan {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"myoscan.cli.{name}")
        except ModuleNotFoundError as exc:  # a sub-command not built into this install
            if exc.name != f"myoscan.cli.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


#: Libraries whose INFO chatter (Dask nannies, worker connections ...) users of the CLI never need.
_CHATTY_LOGGERS = ("distributed", "tornado", "bokeh", "asyncio")


def _not_chatty(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or not record.name.startswith(_CHATTY_LOGGERS)


def _configure_logging(quiet: bool, verbose: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="myoscan: %(message)s", stream=sys.stderr, force=True)
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)  # records propagated from loggers with their own level too
        if not verbose:
            handler.addFilter(_not_chatty)


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning as ``myoscan: warning: <message>`` (no source path and code line), like the errors.

    Installed by :func:`main` inside its ``catch_warnings`` block rather than through
    ``logging.captureWarnings``, which keeps the first ``showwarning`` it replaced for the life of
    the process and so stops routing warnings when ``main`` runs more than once (tests, notebooks).
    """
    logging.getLogger("py.warnings").warning("warning: %s", message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``myoscan`` command line and return its exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        0 on success, 1 when some of the work failed (batch commands), 2 on bad input.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    _configure_logging(getattr(args, "quiet", False), getattr(args, "verbose", False))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _log_warning
            return int(args.handler(args) or 0)
    except MyoscanError as exc:
        print(f"myoscan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"myoscan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
