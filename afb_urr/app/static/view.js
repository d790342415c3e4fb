// The frame view: the frame, the mask overlay, the brush cursor and a polygon being drawn,
// with zoom (about the cursor) and pan. Image coordinates are pixels of the video frame.

export class Viewport {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.image = null;
    this.w = 0; this.h = 0;
    this.scale = 1; this.ox = 0; this.oy = 0;
    this.fill = document.createElement("canvas");   // object interiors, drawn with the opacity
    this.edge = document.createElement("canvas");   // object outlines, always opaque
    this.overlayOn = true;
    this.opacity = 0.55;
    this.cursor = null;     // {x, y, r} in image pixels
    this.polygon = null;    // [[x, y], ...] in image pixels
    this.onchange = () => {};
    this._queued = false;
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
  }

  setSize(w, h) {
    if (w === this.w && h === this.h) return;
    this.w = w; this.h = h;
    for (const c of [this.fill, this.edge]) { c.width = w; c.height = h; }
    this.fit();
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const { clientWidth: cw, clientHeight: ch } = this.canvas;
    const oldW = this.canvas.width / dpr, oldH = this.canvas.height / dpr;
    this.canvas.width = Math.round(cw * dpr);
    this.canvas.height = Math.round(ch * dpr);
    if (oldW > 0 && this.w) { this.ox += (cw - oldW) / 2; this.oy += (ch - oldH) / 2; }
    this.draw();
  }

  fit() {
    const { clientWidth: cw, clientHeight: ch } = this.canvas;
    if (!this.w || !cw) return;
    this.scale = Math.min(cw / this.w, ch / this.h) * 0.96;
    this.ox = (cw - this.w * this.scale) / 2;
    this.oy = (ch - this.h * this.scale) / 2;
    this.changed();
  }

  zoomAt(factor, cx, cy) {  // cx, cy: canvas CSS pixels
    const s = Math.min(64, Math.max(0.05, this.scale * factor));
    this.ox = cx - (cx - this.ox) * (s / this.scale);
    this.oy = cy - (cy - this.oy) * (s / this.scale);
    this.scale = s;
    this.changed();
  }

  zoomCenter(factor) {
    this.zoomAt(factor, this.canvas.clientWidth / 2, this.canvas.clientHeight / 2);
  }

  pan(dx, dy) { this.ox += dx; this.oy += dy; this.changed(); }

  changed() { this.draw(); this.onchange(); }

  toImage(clientX, clientY) {
    const r = this.canvas.getBoundingClientRect();
    return { x: (clientX - r.left - this.ox) / this.scale, y: (clientY - r.top - this.oy) / this.scale };
  }

  toClient(x, y) {
    const r = this.canvas.getBoundingClientRect();
    return { x: r.left + this.ox + x * this.scale, y: r.top + this.oy + y * this.scale };
  }

  // Render a label map (Uint8Array, w*h) with colours {id: [r, g, b]} into the overlay layers.
  setMask(labels, colours) {
    const { w, h } = this;
    if (!labels || !w) return;
    const fill = new ImageData(w, h), edge = new ImageData(w, h);
    const lut = new Uint8Array(256 * 3);
    for (const [id, c] of Object.entries(colours)) lut.set(c, Number(id) * 3);
    const f = fill.data, e = edge.data;
    for (let y = 0, i = 0; y < h; y++) {
      for (let x = 0; x < w; x++, i++) {
        const l = labels[i];
        if (!l) continue;
        const border = (x > 0 && labels[i - 1] !== l) || (x < w - 1 && labels[i + 1] !== l) ||
          (y > 0 && labels[i - w] !== l) || (y < h - 1 && labels[i + w] !== l);
        const d = border ? e : f, o = i * 4;
        d[o] = lut[l * 3]; d[o + 1] = lut[l * 3 + 1]; d[o + 2] = lut[l * 3 + 2]; d[o + 3] = 255;
      }
    }
    this.fill.getContext("2d").putImageData(fill, 0, 0);
    this.edge.getContext("2d").putImageData(edge, 0, 0);
    this.draw();
  }

  draw() {
    if (this._queued) return;
    this._queued = true;
    requestAnimationFrame(() => { this._queued = false; this._draw(); });
  }

  _draw() {
    const { ctx, canvas } = this;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!this.image || !this.w) return;
    ctx.setTransform(dpr * this.scale, 0, 0, dpr * this.scale, dpr * this.ox, dpr * this.oy);
    ctx.imageSmoothingEnabled = this.scale < 2;
    ctx.drawImage(this.image, 0, 0, this.w, this.h);
    ctx.imageSmoothingEnabled = false;
    if (this.overlayOn) {
      ctx.globalAlpha = this.opacity;
      ctx.drawImage(this.fill, 0, 0);
      ctx.globalAlpha = Math.min(1, this.opacity + 0.35);
      ctx.drawImage(this.edge, 0, 0);
      ctx.globalAlpha = 1;
    }
    ctx.lineWidth = 1.5 / this.scale;
    if (this.polygon && this.polygon.length) this._drawPolygon();
    if (this.cursor) {
      ctx.beginPath();
      ctx.arc(this.cursor.x, this.cursor.y, Math.max(this.cursor.r, 0.5), 0, Math.PI * 2);
      ctx.strokeStyle = "rgba(255,255,255,.9)";
      ctx.stroke();
    }
  }

  _drawPolygon() {
    const { ctx } = this;
    ctx.beginPath();
    this.polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (this.cursor) ctx.lineTo(this.cursor.x, this.cursor.y);
    ctx.strokeStyle = "#ffd84d";
    ctx.stroke();
    for (const [x, y] of this.polygon) {
      ctx.fillStyle = "#ffd84d";
      ctx.fillRect(x - 2 / this.scale, y - 2 / this.scale, 4 / this.scale, 4 / this.scale);
    }
  }
}
