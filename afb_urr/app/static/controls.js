// The sidebar, header and transport controls; uploads (button or drop) and exports.
import * as api from "./api.js";

const $ = (id) => document.getElementById(id);

export function bindControls(app) {
  const on = (id, ev, fn) => $(id).addEventListener(ev, (e) => app.run(() => fn(e)));
  on("open-video", "click", () => app.openVideo($("video-select").value));
  on("open-demo", "click", () => app.openVideo("name:demo"));
  on("session-select", "change", (e) => e.target.value && app.openSession(e.target.value, 0));
  on("new-session", "click", () => app.session ? app.newSession(app.session.video.id) : app.openVideo($("video-select").value));
  on("upload", "change", (e) => e.target.files[0] && uploadFile(app, e.target.files[0]));
  on("add-object", "click", () => app.session && app.addObject());
  on("undo", "click", () => app.undo());
  on("redo", "click", () => app.undo(true));
  on("import-png", "change", (e) => { const f = e.target.files[0]; e.target.value = ""; return f && app.importPng(f); });
  on("clear-frame", "click", () => { if (app.session && app.canEdit()) { app.editor.begin(); app.editor.clear(); app.maskEdited(true); } });
  on("drop-annotation", "click", () => dropAnnotation(app));
  on("brush-size", "input", (e) => app.setBrushSize(Number(e.target.value)));
  on("overlay", "change", (e) => app.setOverlay(e.target.checked, null));
  on("opacity", "input", (e) => app.setOverlay(null, Number(e.target.value) / 100));
  on("zoom-fit", "click", () => app.view.fit());
  on("zoom-in", "click", () => app.view.zoomCenter(1.25));
  on("zoom-out", "click", () => app.view.zoomCenter(0.8));
  on("cancel-job", "click", () => api.send("POST", `/api/sessions/${app.session.id}/cancel`));
  on("prev", "click", () => app.goto(app.t - 1));
  on("next", "click", () => app.goto(app.t + 1));
  on("play", "click", () => app.togglePlay());
  on("next-uncertain", "click", () => app.nextUncertain());
  on("help-button", "click", () => $("help").classList.remove("hidden"));
  on("help-close", "click", () => $("help").classList.add("hidden"));
  document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => app.setTool(b.dataset.tool)));
  document.querySelectorAll("[data-propagate]").forEach((b) => b.addEventListener("click", () => app.run(() => app.propagate(b.dataset.propagate))));
  document.querySelectorAll("[data-export]").forEach((b) => b.addEventListener("click", () => app.run(() => exportAs(app, b.dataset.export))));
  bindDrop(app);
  app.setTool("brush");
}

function bindDrop(app) {
  const vp = $("viewport"), hint = $("drop-hint");
  vp.addEventListener("dragover", (e) => { e.preventDefault(); hint.classList.remove("hidden"); });
  vp.addEventListener("dragleave", () => hint.classList.add("hidden"));
  vp.addEventListener("drop", (e) => {
    e.preventDefault(); hint.classList.add("hidden");
    const f = e.dataTransfer.files[0];
    if (f) app.run(() => uploadFile(app, f));
  });
}

async function uploadFile(app, file) {
  $("job-status").textContent = `uploading ${file.name}…`;
  const info = await api.upload(`/api/videos?filename=${encodeURIComponent(file.name)}`, file, (p) => {
    $("progress-bar").style.width = p * 100 + "%";
    $("job-status").textContent = p < 1 ? `uploading ${Math.round(p * 100)}%` : "decoding frames…";
  });
  $("job-status").textContent = `${info.name}: ${info.num_frames} frames`;
  await app.newSession(info.id);
}

async function dropAnnotation(app) {
  if (!app.session || !app.canEdit()) return;
  if (!app.session.annotated.includes(app.t)) { app.toast("this frame has no annotation"); return; }
  await app.flushSave();
  app.applyState(await api.send("DELETE", `/api/sessions/${app.session.id}/masks/${app.t}`));
  app.toast(`frame ${app.t + 1} is no longer annotated; propagate to recompute it`);
}

async function exportAs(app, kind) {
  if (!app.session) throw new Error("open a video first");
  await app.flushSave();
  app.toast("exporting…");
  const { name, incomplete } = await api.download(`/api/sessions/${app.session.id}/export/${kind}`);
  app.toast(incomplete ? `${name}: ${incomplete} frames have no mask yet (exported empty)` : `exported ${name}`, incomplete > 0);
}
