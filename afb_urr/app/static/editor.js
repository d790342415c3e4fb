// Mask editing on one frame's label map (Uint8Array, w*h; 0 = background): brush, eraser,
// polygon, flood fill, with undo/redo kept per frame (bounded).

const MAX_STEPS = 40;      // undo steps kept per frame
const MAX_FRAMES = 24;     // frames whose history is kept

export class MaskEditor {
  constructor() {
    this.w = 0; this.h = 0;
    this.t = -1;
    this.labels = null;
    this.histories = new Map();   // t -> {undo: [], redo: [], wasAnnotated}
  }

  load(t, labels, w, h, annotated) {
    this.t = t; this.w = w; this.h = h;
    this.labels = labels;
    if (!this.histories.has(t)) this.histories.set(t, { undo: [], redo: [], wasAnnotated: annotated });
    const hist = this.histories.get(t);
    this.histories.delete(t); this.histories.set(t, hist);   // most recently used last
    while (this.histories.size > MAX_FRAMES) this.histories.delete(this.histories.keys().next().value);
  }

  reset() { this.histories.clear(); this.labels = null; this.t = -1; }

  get history() { return this.histories.get(this.t); }
  canUndo() { return !!this.history?.undo.length; }
  canRedo() { return !!this.history?.redo.length; }
  // True when undo has come back to a frame that had no annotation before the edits.
  backToUnannotated() { const h = this.history; return h && !h.undo.length && !h.wasAnnotated; }

  begin() {   // call before each edit: remembers the map for undo
    const h = this.history;
    h.undo.push(this.labels.slice());
    if (h.undo.length > MAX_STEPS) h.undo.shift();
    h.redo.length = 0;
  }

  undo() {
    const h = this.history;
    if (!h?.undo.length) return false;
    h.redo.push(this.labels);
    this.labels = h.undo.pop();
    return true;
  }

  redo() {
    const h = this.history;
    if (!h?.redo.length) return false;
    h.undo.push(this.labels);
    this.labels = h.redo.pop();
    return true;
  }

  // A disc of radius r (image pixels) at (cx, cy): pixel centres inside it take `value`.
  stamp(cx, cy, r, value) {
    const { w, h, labels } = this;
    const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(w - 1, Math.ceil(cx + r));
    const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(h - 1, Math.ceil(cy + r));
    const r2 = r * r;
    for (let y = y0; y <= y1; y++) {
      const dy = y + 0.5 - cy;
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - cx;
        if (dx * dx + dy * dy <= r2) labels[y * w + x] = value;
      }
    }
  }

  line(x0, y0, x1, y1, r, value) {
    const d = Math.hypot(x1 - x0, y1 - y0);
    const n = Math.max(1, Math.ceil(d / Math.max(0.5, r / 2)));
    for (let i = 0; i <= n; i++) this.stamp(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n, r, value);
  }

  // Pixels whose centres lie inside the polygon (even-odd rule) take `value`.
  polygon(points, value) {
    if (points.length < 3) return false;
    const { w, h, labels } = this;
    const ys = points.map((p) => p[1]);
    const y0 = Math.max(0, Math.floor(Math.min(...ys))), y1 = Math.min(h - 1, Math.ceil(Math.max(...ys)));
    for (let y = y0; y <= y1; y++) {
      const cy = y + 0.5, xs = [];
      for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
        const [xi, yi] = points[i], [xj, yj] = points[j];
        if ((yi > cy) !== (yj > cy)) xs.push(xi + (cy - yi) * (xj - xi) / (yj - yi));
      }
      xs.sort((a, b) => a - b);
      for (let k = 0; k + 1 < xs.length; k += 2) {
        const a = Math.max(0, Math.ceil(xs[k] - 0.5)), b = Math.min(w - 1, Math.floor(xs[k + 1] - 0.5));
        for (let x = a; x <= b; x++) labels[y * w + x] = value;
      }
    }
    return true;
  }

  // Flood fill (4-connected) the region of equal labels under (x, y) with `value`.
  fill(x, y, value) {
    const { w, h, labels } = this;
    x = Math.floor(x); y = Math.floor(y);
    if (x < 0 || y < 0 || x >= w || y >= h) return false;
    const target = labels[y * w + x];
    if (target === value) return false;
    const stack = [y * w + x];
    labels[y * w + x] = value;
    while (stack.length) {
      const i = stack.pop(), px = i % w;
      for (const j of [px > 0 ? i - 1 : -1, px < w - 1 ? i + 1 : -1, i - w, i + w]) {
        if (j >= 0 && j < labels.length && labels[j] === target) { labels[j] = value; stack.push(j); }
      }
    }
    return true;
  }

  clear() { this.labels.fill(0); }
}
