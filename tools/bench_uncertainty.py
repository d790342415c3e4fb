#!/usr/bin/env python
"""Spearman correlation of the per-frame uncertainty score with the error 1 - J.

The command lives in afb_urr/cli/bench_uncertainty.py (``python tools/bench_uncertainty.py
--help``); installed, it is also ``afb-urr-bench-uncertainty``.
"""
import sys

from afb_urr.cli.bench_uncertainty import main

if __name__ == "__main__":
    sys.exit(main())
