#!/usr/bin/env python
"""Segmenter speed and memory over a long procedural video.

The command lives in afb_urr/cli/benchmark.py (``python tools/benchmark.py --help``); installed, it is
also ``afb-urr-bench``.
"""
import sys

from afb_urr.cli.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
