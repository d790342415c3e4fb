#!/usr/bin/env python
"""Speed of the J&F evaluator against the DAVIS 2017 package's algorithm.

The command lives in afb_urr/cli/bench_eval.py (``python tools/bench_eval.py --help``); installed, it is
also ``afb-urr-bench-eval``.
"""
import sys

from afb_urr.cli.bench_eval import main

if __name__ == "__main__":
    sys.exit(main())
