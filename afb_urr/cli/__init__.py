"""The command-line tools: one module per command, each with ``build_parser()`` and
``main(argv=None) -> int``, run by ``python tools/<name>.py`` and by the console
scripts (``afb-urr-<name>``, see setup.py) alike.

One convention for all of them (:func:`run_tool`): argparse errors exit 2; any
other failure prints one line ``error: ...`` on stderr and exits 1, or raises
with its traceback under ``--debug``; Ctrl-C exits 130.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable


class HelpFormatter(argparse.HelpFormatter):
    """Keeps text with line breaks (epilogs, examples) as written and wraps the rest;
    shows an option's default only where it has one worth showing."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action):
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if not hidden and "%(default)" not in text and "default:" not in text:
            text += " (default: %(default)s)"
        return text


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show the traceback instead of a one-line error."""
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")


def add_precision_options(parser, prefix: str = "") -> None:
    """``--precision`` and ``--compile``: the Segmenter's compute modes (InferenceConfig fields);
    ``prefix`` starts their help (e.g. "--evaluate: ")."""
    from ..config import PRECISIONS
    parser.add_argument("--precision", choices=PRECISIONS,
                        help=f"{prefix}compute precision of the encoders and decoder, and the bank's "
                             "dtype (config inference.precision: fp32)")
    parser.add_argument("--compile", action="store_true",
                        help=f"{prefix}torch.compile the encoders and the decoder")


def one_line(e: BaseException) -> str:
    """An exception as one line: the message for bad input (ValueError, OSError,
    TypeError), else its type, message and a hint about --debug."""
    msg = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, (ValueError, OSError, TypeError)):
        return msg
    return f"{type(e).__name__}: {msg} (rerun with --debug for the traceback)"


def run_tool(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int], argv=None) -> int:
    """Parse ``argv`` and return ``run(args)``'s exit status, the errors as the module docstring says."""
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # every failure becomes one line unless --debug
        if getattr(args, "debug", False):
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1
