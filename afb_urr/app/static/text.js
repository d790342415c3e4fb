// The text box: a new object from a sentence on the current frame (the server's referring model).
import * as api from "./api.js";

const $ = (id) => document.getElementById(id);

export function bindTextPrompt(app) {
  $("text-form").addEventListener("submit", (e) => {
    e.preventDefault();
    app.run(() => findObject(app));
  });
}

// After /api/info: usable only when the server has a referring model.
export function showTextPrompt(app) {
  const on = !!app.info?.text;
  $("text-input").disabled = !on;
  $("text-find").disabled = !on;
  $("text-input").placeholder = on ? "Describe an object…" : "no referring model";
  $("text-form").title = on ? "Create an object from a sentence on this frame, e.g. the dog on the left"
    : "Start the app with --referring-weights (and --vocab) to create objects from sentences";
}

async function findObject(app) {
  const input = $("text-input"), status = $("text-status"), text = input.value.trim();
  if (!app.session) throw new Error("open a video first");
  if (!text) throw new Error("type a sentence that describes the object");
  if (!app.canEdit()) return;
  await app.flushSave();
  const t = app.t, sid = app.session.id;
  status.textContent = `finding “${text}” on frame ${t + 1}…`;
  $("text-find").disabled = true;
  try {
    const r = await api.send("POST", `/api/sessions/${sid}/text`, { frame: t, text });
    if (app.session?.id !== sid) return;
    if (app.t === t) app.editor.begin();   // Undo undoes the sentence as any edit
    app.masks.delete(t);
    app.applyState(r.session);
    app.activeObject = r.object.id;
    app.renderObjects();
    await app.goto(app.t);
    input.value = "";
    status.textContent = `${r.object.name}: object ${r.object.id}, ${r.pixels} pixels, confidence ${r.confidence.toFixed(2)}`;
    if (r.warnings.length) app.toast(r.warnings.join("; "), true);
  } catch (e) {
    status.textContent = "";
    throw e;
  } finally {
    $("text-find").disabled = false;
  }
}
