"""Small helpers shared by the command-line tools in ``tools/``."""
from __future__ import annotations

import argparse


class HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default only where it has one worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if not hidden and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text
