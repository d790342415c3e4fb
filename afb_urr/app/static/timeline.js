// The timeline: one cell per frame (result / out of date / none), annotated-frame markers,
// the frames a running job has finished, the current frame, and the uncertainty strip below.
// Click or drag to move through the video.

const C = {
  none: "#262b35", done: "#3d6fc4", running: "#5b8ee6", stale: "#7a5a1c", ann: "#f5c542",
  cursor: "#ffffff", strip: "#1d2129",
};

export class Timeline {
  constructor(canvas, onseek) {
    this.canvas = canvas;
    this.onseek = onseek;
    this.n = 0;
    this.current = 0;
    this.done = new Set(); this.stale = new Set(); this.annotated = new Set(); this.fresh = new Set();
    this.scores = [];
    this.hover = -1;
    let dragging = false;
    const seek = (e) => this.onseek(this.frameAt(e.clientX));
    canvas.addEventListener("pointerdown", (e) => { dragging = true; canvas.setPointerCapture(e.pointerId); seek(e); });
    canvas.addEventListener("pointermove", (e) => {
      if (dragging) seek(e);
      this.hover = this.frameAt(e.clientX);
      canvas.title = this.describe(this.hover);
    });
    canvas.addEventListener("pointerup", () => { dragging = false; });
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  frameAt(clientX) {
    const r = this.canvas.getBoundingClientRect();
    return Math.max(0, Math.min(this.n - 1, Math.floor((clientX - r.left) / r.width * this.n)));
  }

  describe(t) {
    const parts = [`frame ${t}`];
    if (this.annotated.has(t)) parts.push("annotated");
    else if (this.stale.has(t)) parts.push("out of date");
    else if (this.done.has(t)) parts.push("result");
    if (this.scores[t] != null) parts.push(`uncertainty ${this.scores[t].toFixed(3)}`);
    return parts.join(" · ");
  }

  setState(state) {
    this.n = state.video.num_frames;
    this.done = new Set(state.done);
    this.stale = new Set(state.stale);
    this.annotated = new Set(state.annotated);
    this.scores = state.scores.slice();
    this.fresh = new Set();
    this.draw();
  }

  frameDone(t, score) {
    this.done.add(t); this.fresh.add(t); this.stale.delete(t);
    if (score != null) this.scores[t] = score;
    this.draw();
  }

  scoreScale() {  // full colour at the 95th percentile, but at least 2.5x the median score
    const known = this.scores.filter((s) => s != null).sort((a, b) => a - b);
    if (!known.length) return 1;
    const q = (f) => known[Math.floor(f * (known.length - 1))];
    return Math.max(1e-6, q(0.95), 2.5 * q(0.5));
  }

  draw() {  // at most once per animation frame
    if (this._queued) return;
    this._queued = true;
    requestAnimationFrame(() => { this._queued = false; this._draw(); });
  }

  // What one cell shows: frames lo..hi-1 (several per pixel column on long videos).
  _cell(lo, hi) {
    let done = 0, fresh = 0, stale = 0, score = null;
    for (let t = lo; t < hi; t++) {
      if (this.done.has(t)) { done++; if (this.fresh.has(t)) fresh++; }
      if (this.stale.has(t) && !this.annotated.has(t)) stale++;
      const s = this.scores[t];
      if (s != null && !this.annotated.has(t)) score = Math.max(score ?? 0, s);
    }
    const n = hi - lo;
    return { done: done * 2 >= n && done > 0, fresh: fresh > 0, stale: stale * 2 >= n && stale > 0, score };
  }

  _draw() {
    const { canvas } = this;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(canvas.clientWidth * dpr);
    canvas.height = Math.round(canvas.clientHeight * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = canvas.clientWidth, H = canvas.clientHeight;
    ctx.clearRect(0, 0, W, H);
    if (!this.n) return;
    const top = 8, barH = H - top - 14, stripY = top + barH + 3, stripH = 11;
    const scale = this.scoreScale();
    ctx.fillStyle = C.strip;
    ctx.fillRect(0, stripY, W, stripH);
    const cells = Math.min(this.n, Math.floor(W));
    const cw = W / cells;
    for (let c = 0; c < cells; c++) {
      const lo = Math.floor(c * this.n / cells), hi = Math.floor((c + 1) * this.n / cells);
      const cell = this._cell(lo, hi);
      const x = c * cw, wcell = Math.max(1, cw - (cw > 4 ? 1 : 0));
      ctx.fillStyle = cell.done ? (cell.fresh ? C.running : C.done) : C.none;
      ctx.fillRect(x, top, wcell, barH);
      if (cell.stale) {
        ctx.fillStyle = C.stale;
        ctx.fillRect(x, top + barH * 0.55, wcell, barH * 0.45);
      }
      if (cell.score != null) {
        const v = Math.min(1, cell.score / scale);
        ctx.fillStyle = `rgba(${Math.round(120 + 125 * v)},${Math.round(165 - 95 * v)},${Math.round(36 + 20 * v)},${0.15 + 0.85 * v})`;
        ctx.fillRect(x, stripY, wcell, stripH);
      }
    }
    const fw = W / this.n;
    for (const t of this.annotated) this._diamond(ctx, (t + 0.5) * fw, top - 1);
    const cx = (this.current + 0.5) * fw;
    ctx.fillStyle = C.cursor;
    ctx.fillRect(cx - 1, 0, 2, H);
  }

  _diamond(ctx, x, y) {
    ctx.fillStyle = C.ann;
    ctx.beginPath();
    ctx.moveTo(x, y - 5); ctx.lineTo(x + 4, y); ctx.lineTo(x, y + 5); ctx.lineTo(x - 4, y);
    ctx.closePath();
    ctx.fill();
  }
}
