#!/usr/bin/env python
"""Benchmark the web app: responsiveness during a propagation, and its propagation time.

The command lives in afb_urr/cli/bench_app.py (``python tools/bench_app.py --help``); installed,
it is also ``afb-urr-bench-app``.
"""
import sys

from afb_urr.cli.bench_app import main

if __name__ == "__main__":
    sys.exit(main())
