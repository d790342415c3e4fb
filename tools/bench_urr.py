#!/usr/bin/env python
"""Speed of the fused uncertain-region refinement op against its PyTorch formulation.

The command lives in afb_urr/cli/bench_urr.py (``python tools/bench_urr.py --help``); installed, it is
also ``afb-urr-bench-urr``.
"""
import sys

from afb_urr.cli.bench_urr import main

if __name__ == "__main__":
    sys.exit(main())
