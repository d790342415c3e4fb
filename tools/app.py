#!/usr/bin/env python
"""Serve the web app: annotate a video in the browser, propagate, correct, export.

  python tools/app.py                          # demo weights, offers the demo video
  python tools/app.py --weights ckpt.pth --videos ~/clips --work ~/afb_work
  python tools/app.py --host 0.0.0.0 --port 7860   # prints a token every request needs

Open the printed URL; the JSON API is documented at /docs. The command lives in
afb_urr/cli/app.py (``python tools/app.py --help``); installed, it is also ``afb-urr-app``.
"""
import sys

from afb_urr.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
