#!/usr/bin/env python
"""Segment a video from its first frame's mask, run a dataset protocol, or the demo.

The command lives in afb_urr/cli/infer.py (``python tools/infer.py --help``); installed, it is
also ``afb-urr-infer``.
"""
import sys

from afb_urr.cli.infer import main

if __name__ == "__main__":
    sys.exit(main())
