#!/usr/bin/env python
"""Serve the web app: annotate a video in the browser, propagate, correct, export.

  python tools/app.py                          # demo weights, offers the demo video
  python tools/app.py --weights ckpt.pth --videos ~/clips --work ~/afb_work
  python tools/app.py --host 0.0.0.0 --port 7860   # prints a token every request needs

Open the printed URL; the JSON API is documented at /docs.
"""
from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, REPO)

from afb_urr.app.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
