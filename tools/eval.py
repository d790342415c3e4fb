#!/usr/bin/env python
"""Score a results folder with DAVIS J&F.

The command lives in afb_urr/cli/eval.py (``python tools/eval.py --help``); installed, it is
also ``afb-urr-eval``.
"""
import sys

from afb_urr.cli.eval import main

if __name__ == "__main__":
    sys.exit(main())
