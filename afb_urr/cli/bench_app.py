"""Benchmark the web app: responsiveness during a propagation, and propagation time
through the app against the same work done directly.

  python tools/bench_app.py                 # the demo video (40 frames, 120x216), CPU
  python tools/bench_app.py --frames 120 --size 240 432 --device cpu

Starts the app (``python -m afb_urr.cli.app``, demo weights) in a subprocess on a free port, then:
1. propagates the demo world from frame 0's true mask ("both") with nothing else going on:
   the app's propagation time;
2. propagates it again in a new session while a client fetches random frames and masks
   (``GET /api/videos/<id>/frames/<t>``, ``GET /api/sessions/<id>/masks/<t>?format=raw``)
   back to back: their latency (p50 / p95 / max);
3. runs the same propagation in this process: ``tools/infer.py`` itself (its ``main``
   on the frames as PNGs with frame 0's mask, writing the masks), ``VideoSession``
   alone, and ``segment_stream`` alone (the network's loop, no output), for comparison.
One untimed app job loads the model and warms up first; propagation times are the medians
of --repeat interleaved runs (a shared machine is noisy).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from . import HelpFormatter, add_debug_option, run_tool

# The folder holding this package, so that the app subprocess runs the same code.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_app(work: str, device: str | None):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "afb_urr.cli.app", "--work", work, "--port", str(port)]
    cmd += ["--device", device] if device else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    import httpx
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    for _ in range(600):
        try:
            client.get("/api/info")
            return proc, client
        except httpx.TransportError:
            if proc.poll() is not None:
                raise RuntimeError("the app did not start")
            time.sleep(0.2)
    raise RuntimeError("the app did not answer within 120 s")


def _zip(frames) -> bytes:
    import io
    import zipfile

    import cv2
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i, f in enumerate(frames):
            z.writestr(f"{i:05d}.png", cv2.imencode(".png", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes())
    return buf.getvalue()


def new_session(client, video: str, mask0: np.ndarray) -> str:
    sid = client.post("/api/sessions", json={"video": video}).json()["id"]
    r = client.put(f"/api/sessions/{sid}/masks/0", content=mask0.tobytes(),
                   headers={"content-type": "application/octet-stream"})
    r.raise_for_status()
    return sid


def run_job(client, sid: str, probe=None) -> tuple[dict, list, list]:
    """Propagate "both" and wait; ``probe(latencies)`` runs between polls while the job runs."""
    client.post(f"/api/sessions/{sid}/propagate", json={"direction": "both"}).raise_for_status()
    frame_ms, mask_ms = [], []
    while True:
        job = client.get(f"/api/sessions/{sid}/job").json()
        if job["state"] not in ("queued", "running"):
            return job, frame_ms, mask_ms
        if probe:
            probe(frame_ms, mask_ms)
        else:
            time.sleep(0.05)


def make_probe(client, video: str, sid: str, n: int):
    def probe(frame_ms, mask_ms):
        for kind, out in (("frame", frame_ms), ("mask", mask_ms)):
            t = random.randrange(n)
            path = f"/api/videos/{video}/frames/{t}" if kind == "frame" else \
                f"/api/sessions/{sid}/masks/{t}?format=raw"
            t0 = time.perf_counter()
            client.get(path).raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
    return probe


def in_thread(fn):
    """Run ``fn()`` in a new thread and return its result. The app propagates in a worker
    thread; timing the direct runs the same way keeps the comparison fair (on a CPU shared with
    other work, PyTorch's OpenMP pool runs very differently in the main thread)."""
    out = []
    worker = threading.Thread(target=lambda: out.append(fn()))
    worker.start()
    worker.join()
    return out[0]


class Direct:
    """The same propagation in this process: with VideoSession, and with segment_stream
    (the streaming path of tools/infer.py)."""

    def __init__(self, frames, mask0, device):
        from afb_urr.checkpoint import load_model
        from afb_urr.config import load_config
        from afb_urr.inference.build import INFERENCE_SECTIONS, resolve_device
        from afb_urr.inference.demo import demo_weights
        self.dev = resolve_device(device)
        self.weights = demo_weights()
        self.model = load_model(self.weights, device=self.dev)
        self.cfg = load_config("davis17", sections=INFERENCE_SECTIONS).inference
        self.frames, self.mask0 = list(frames), mask0

    def session(self) -> float:
        from afb_urr.inference import VideoSession
        with VideoSession(self.frames, self.model, self.cfg, device=self.dev) as video:
            video.add_mask(0, self.mask0)
            t0 = time.perf_counter()
            for _ in video.propagate("both"):
                pass
            return time.perf_counter() - t0

    def infer(self, folder: str) -> float:
        """Wall time of ``tools/infer.py --video <frames> --mask <frame 0> --out <masks>`` in this
        process (model loading, frame decoding and mask writing included)."""
        from afb_urr.cli.infer import main as infer_main
        from afb_urr.io import write_mask
        frames_dir, out = os.path.join(folder, "frames"), os.path.join(folder, "masks")
        if not os.path.isdir(frames_dir):
            import cv2
            os.makedirs(frames_dir)
            for i, f in enumerate(self.frames):
                cv2.imwrite(os.path.join(frames_dir, f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            write_mask(os.path.join(folder, "mask0.png"), self.mask0)
        argv = ["--video", frames_dir, "--mask", os.path.join(folder, "mask0.png"), "--out", out,
                "--overwrite", "--config", "davis17", "--no-progress"]
        argv += ["--device", str(self.dev), "--weights", self.weights]
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            if infer_main(argv) != 0:
                raise RuntimeError("tools/infer.py failed on the benchmark video")
        return time.perf_counter() - t0

    def stream(self) -> float:
        from afb_urr.inference import segmenter_factory, segment_stream
        seg = segmenter_factory(self.model, self.cfg, self.dev)()
        names = [f"{i:05d}" for i in range(len(self.frames))]
        t0 = time.perf_counter()
        for _ in segment_stream(seg, list(zip(names, self.frames)), masks={names[0]: self.mask0},
                                progress=False):
            pass
        return time.perf_counter() - t0


def pct(xs, q) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--frames", type=int, default=40, help="frames of the synthetic demo world")
    p.add_argument("--size", type=int, nargs=2, default=(120, 216), metavar=("H", "W"))
    p.add_argument("--device", help="torch device for the app and the direct runs (default: cuda if any)")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of each propagation timing; the median is reported (a shared machine is noisy)")
    add_debug_option(p)
    return p


def bench(args) -> int:
    from afb_urr.data.synthetic import DEMO_SEED, render_video
    frames, truth = render_video(DEMO_SEED, num_frames=args.frames, size=tuple(args.size), num_objects=2)
    with tempfile.TemporaryDirectory() as work:
        proc, client = start_app(work, args.device)
        try:
            r = client.post("/api/videos", params={"filename": "bench.zip"}, content=_zip(frames),
                            headers={"content-type": "application/octet-stream"})
            r.raise_for_status()
            video = r.json()["id"]
            direct = Direct(frames, truth[0], args.device)
            run_job(client, new_session(client, video, truth[0]))  # loads the model, warms up
            times = {"app": [], "infer": [], "session": [], "stream": []}
            for _ in range(args.repeat):  # interleaved, so that each sees the same machine load
                times["app"].append(run_job(client, new_session(client, video, truth[0]))[0]["seconds"])
                times["infer"].append(in_thread(lambda: direct.infer(work)))
                times["session"].append(in_thread(direct.session))
                times["stream"].append(in_thread(direct.stream))
            sid = new_session(client, video, truth[0])
            busy, frame_ms, mask_ms = run_job(client, sid, make_probe(client, video, sid, args.frames))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    report(args, {k: float(np.median(v)) for k, v in times.items()}, busy["seconds"], frame_ms, mask_ms)
    return 0


def report(args, med: dict, busy: float, frame_ms, mask_ms) -> None:
    n = args.frames
    print(f"video: {n} frames, {args.size[0]}x{args.size[1]}, device {args.device or 'default'}; "
          f"medians of {args.repeat} runs")
    print(f"{'propagation (both, from frame 0)':44s} {'seconds':>8s} {'fps':>6s}")
    for name, s in (("app job, idle server", med["app"]), ("app job, while probed", busy),
                    ("tools/infer.py (in-process, writes masks)", med["infer"]),
                    ("VideoSession in-process", med["session"]),
                    ("segment_stream (network loop only)", med["stream"])):
        print(f"{name:44s} {s:8.2f} {n / s:6.2f}")
    print(f"app vs tools/infer.py: {100 * (med['app'] / med['infer'] - 1):+.1f}%   "
          f"app vs VideoSession: {100 * (med['app'] / med['session'] - 1):+.1f}%   "
          f"app vs segment_stream: {100 * (med['app'] / med['stream'] - 1):+.1f}%")
    print(f"{'latency during propagation (ms)':44s} {'n':>5s} {'p50':>7s} {'p95':>7s} {'max':>7s}")
    for name, xs in (("GET frame", frame_ms), ("GET mask (raw)", mask_ms)):
        print(f"{name:44s} {len(xs):5d} {pct(xs, 50):7.1f} {pct(xs, 95):7.1f} {max(xs, default=float('nan')):7.1f}")


def main(argv=None) -> int:
    return run_tool(build_parser(), bench, argv)


if __name__ == "__main__":
    sys.exit(main())
