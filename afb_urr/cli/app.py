"""``python tools/app.py`` (``afb-urr-app``): serve the web app with uvicorn (options below)."""
from __future__ import annotations

import argparse
import sys

from ..app.settings import AppSettings, is_loopback
from . import HelpFormatter, add_debug_option, run_tool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Local web app: open a video, paint the objects on any frame, propagate "
                    "forward/backward, correct where it is unsure, export masks.",
        formatter_class=HelpFormatter)
    p.add_argument("--weights", metavar="CKPT",
                   help="checkpoint (published format); default: the demo weights, and the "
                        "synthetic demo video is offered")
    p.add_argument("--referring-weights", metavar="PTH",
                   help="referring (LAVT) checkpoint for the text box that creates an object from a "
                        "sentence: a released lavt_one or lavt file, or one of ours; default with the demo "
                        "weights: weights/demo_referring_light.pth; otherwise no text box")
    p.add_argument("--vocab", metavar="TXT",
                   help="the referring model's BERT vocabulary (bert-base-uncased's vocab.txt for released "
                        "files); default: <referring weights stem>_vocab.txt")
    p.add_argument("--videos", metavar="DIR", help="folder whose videos (and frame folders) "
                                                    "the page offers to open")
    p.add_argument("--work", metavar="DIR", default="afb_urr_work",
                   help="folder for decoded frames, sessions and exports (every file the app "
                        "writes stays inside it)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; any non-loopback address requires a token")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--token", help="access token for every request (generated and printed when "
                                   "--host is not a loopback address and none is given)")
    p.add_argument("--config", default="davis17", help="YAML config (name in configs/ or path) "
                                                       "whose 'inference' section sets the bank")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--max-upload-mb", type=int, default=512, help="largest upload accepted")
    add_debug_option(p)
    return p


def serve(args) -> int:
    """Check the options, build the app and serve it until Ctrl-C."""
    settings = AppSettings(work=args.work, weights=args.weights, referring_weights=args.referring_weights,
                           vocab=args.vocab, videos=args.videos, host=args.host,
                           port=args.port, token=args.token, config=args.config, device=args.device,
                           max_upload_bytes=args.max_upload_mb * 2**20)
    token = settings.resolve_token()
    from ..app import create_app
    app = create_app(settings)
    app.state.ctx.engine.model()  # a bad checkpoint fails now, in one line, not on first use
    if settings.referring_path is not None:
        app.state.ctx.engine.referring()
    import uvicorn
    shown = args.host if ":" not in args.host else f"[{args.host}]"
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"afb-urr app: {url}  (work folder {settings.work})", flush=True)
    if token and not is_loopback(args.host):
        print("every request needs the token: open the URL above, or send "
              "'Authorization: Bearer TOKEN' from scripts", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=2)
    return 0


def main(argv=None) -> int:
    return run_tool(build_parser(), serve, argv)


if __name__ == "__main__":  # python -m afb_urr.cli.app (tools/bench_app.py starts it so)
    sys.exit(main())
