// Pointer and wheel input on the frame view: painting tools, polygon, fill, zoom and pan.

export function bindViewInput(app) {
  const { view, editor } = app;
  const canvas = view.canvas;
  let drag = null;   // {kind: "pan" | "paint", x, y, last: {x, y}}

  const brushRadius = () => app.brushSize / 2;
  const paintValue = () => (app.tool === "eraser" ? 0 : app.activeObject);

  canvas.addEventListener("contextmenu", (e) => e.preventDefault());

  canvas.addEventListener("pointerdown", (e) => {
    if (!app.session || !view.image) return;
    canvas.setPointerCapture(e.pointerId);
    if (e.button === 1 || e.button === 2 || app.tool === "pan") {
      drag = { kind: "pan", x: e.clientX, y: e.clientY };
      canvas.style.cursor = "grabbing";
      return;
    }
    if (e.button !== 0 || !app.canEdit()) return;
    const p = view.toImage(e.clientX, e.clientY);
    if (app.tool === "brush" || app.tool === "eraser") {
      if (!app.ensureObject()) return;
      editor.begin();
      editor.stamp(p.x, p.y, brushRadius(), paintValue());
      drag = { kind: "paint", last: p };
      app.maskEdited(false);
    } else if (app.tool === "polygon") {
      if (!app.ensureObject()) return;
      view.polygon = view.polygon || [];
      view.polygon.push([p.x, p.y]);
      view.draw();
    } else if (app.tool === "fill") {
      if (!app.ensureObject()) return;
      editor.begin();
      if (editor.fill(p.x, p.y, app.activeObject)) app.maskEdited(true);
      else editor.undo();
    }
  });

  canvas.addEventListener("pointermove", (e) => {
    const p = view.toImage(e.clientX, e.clientY);
    const brush = app.tool === "brush" || app.tool === "eraser";
    view.cursor = { x: p.x, y: p.y, r: brush ? brushRadius() : 0 };
    if (drag?.kind === "pan") {
      view.pan(e.clientX - drag.x, e.clientY - drag.y);
      drag.x = e.clientX; drag.y = e.clientY;
    } else if (drag?.kind === "paint") {
      editor.line(drag.last.x, drag.last.y, p.x, p.y, brushRadius(), paintValue());
      drag.last = p;
      app.maskEdited(false);
    }
    view.draw();
  });

  const end = () => {
    if (drag?.kind === "paint") app.maskEdited(true);
    drag = null;
    canvas.style.cursor = app.tool === "pan" ? "grab" : "crosshair";
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("pointerleave", () => { view.cursor = null; view.draw(); });

  canvas.addEventListener("dblclick", () => { if (app.tool === "polygon") closePolygon(app); });

  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    view.zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
}

export function closePolygon(app) {
  const { view, editor } = app;
  const pts = view.polygon;
  view.polygon = null;
  if (!pts) return;
  // a double-click adds its point twice: drop repeated vertices
  const clean = pts.filter((p, i) => i === 0 || Math.hypot(p[0] - pts[i - 1][0], p[1] - pts[i - 1][1]) > 0.5);
  if (clean.length < 3) { view.draw(); return; }
  editor.begin();
  editor.polygon(clean, app.activeObject);
  app.maskEdited(true);
}

export function cancelPolygon(app) {
  app.view.polygon = null;
  app.view.draw();
}
