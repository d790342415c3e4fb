#!/usr/bin/env python
"""J over long synthetic videos with the published ``threshold`` eviction and with ``minimal``.

The command lives in afb_urr/cli/bench_eviction.py (``python tools/bench_eviction.py --help``);
installed, it is also ``afb-urr-bench-eviction``.
"""
import sys

from afb_urr.cli.bench_eviction import main

if __name__ == "__main__":
    sys.exit(main())
