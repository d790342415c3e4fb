#!/usr/bin/env python
"""Train AFB-URR from a YAML config (or score a checkpoint with --evaluate).

The command lives in afb_urr/cli/train.py (``python tools/train.py --help``); installed, it is
also ``afb-urr-train``.
"""
import sys

from afb_urr.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
