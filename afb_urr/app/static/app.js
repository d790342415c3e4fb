// The page: opens videos and sessions, shows frames and masks, edits, propagates, exports.
import * as api from "./api.js";
import { MaskEditor } from "./editor.js";
import { bindViewInput, cancelPolygon, closePolygon } from "./input.js";
import { bindControls } from "./controls.js";
import { bindKeys } from "./keys.js";
import { renderObjects } from "./objects.js";
import { bindTextPrompt, showTextPrompt } from "./text.js";
import { Timeline } from "./timeline.js";
import { Viewport } from "./view.js";

const $ = (id) => document.getElementById(id);
const CACHE_BYTES = 384 * 2 ** 20;   // decoded frames and masks kept in memory, about

class App {
  constructor() {
    this.view = new Viewport($("view"));
    this.editor = new MaskEditor();
    this.timeline = new Timeline($("timeline"), (t) => this.goto(t));
    this.session = null; this.t = 0; this.tool = "brush"; this.brushSize = 12; this.activeObject = 0;
    this.images = new Map(); this.masks = new Map();
    this.dirty = false; this.saveTimer = null; this.saving = Promise.resolve(); this.source = null;
    this.playing = false; this.info = null;
    this.view.onchange = () => { $("zoom-level").textContent = Math.round(this.view.scale * 100) + "%"; };
    bindViewInput(this);
    bindKeys(this);
    bindControls(this);
    bindTextPrompt(this);
  }

  // ------------------------------------------------------------ messages
  toast(text, error = false) {
    const el = $("toast");
    el.textContent = text;
    el.className = "toast" + (error ? " error" : "");
    clearTimeout(this._toast);
    this._toast = setTimeout(() => el.classList.add("hidden"), error ? 6000 : 2500);
  }

  async run(fn) {   // run an action; show its error as a toast
    try { return await fn(); } catch (e) { this.toast(e.message, true); return undefined; }
  }

  // ------------------------------------------------------------ videos and sessions
  async start() {
    this.info = await api.get("/api/info");
    showTextPrompt(this);
    await this.refreshLists();
    const hash = new URLSearchParams(location.hash.slice(1));
    if (hash.get("s")) await this.run(() => this.openSession(hash.get("s"), Number(hash.get("t") || 0)));
  }

  async refreshLists() {
    const [videos, sessions] = await Promise.all([api.get("/api/videos"), api.get("/api/sessions")]);
    const vs = $("video-select");
    vs.innerHTML = "";
    for (const v of videos.available) vs.add(new Option(v.label, "name:" + v.name));
    const named = new Set(videos.available.map((v) => v.label));
    for (const v of videos.imported) if (!named.has(v.name)) vs.add(new Option(`${v.name} (${v.num_frames} frames)`, "id:" + v.id));
    if (!vs.options.length) vs.add(new Option("no videos: upload one", ""));
    $("open-demo").classList.toggle("hidden", !videos.available.some((v) => v.name === "demo"));
    this.sessions = sessions;
    const ss = $("session-select");
    ss.innerHTML = "";
    if (!sessions.length) ss.add(new Option("none yet", ""));
    for (const s of sessions) ss.add(new Option(`${s.name} · ${new Date(s.updated * 1000).toLocaleString()}`, s.id));
    if (this.session) ss.value = this.session.id;
  }

  async openVideo(value) {
    if (!value) throw new Error("choose a video first, or upload one");
    const info = value.startsWith("name:")
      ? await api.send("POST", "/api/videos/open", { name: value.slice(5) })
      : await api.get("/api/videos/" + value.slice(3));
    await this.openOrCreate(info);
  }

  async openOrCreate(info) {
    const existing = (await api.get("/api/sessions")).find((s) => s.video === info.id);
    if (existing) return this.openSession(existing.id, 0);
    return this.newSession(info.id);
  }

  async newSession(videoId) {
    const state = await api.send("POST", "/api/sessions", { video: videoId });
    await api.send("POST", `/api/sessions/${state.id}/objects`, {});
    await this.openSession(state.id, 0);
  }

  async openSession(sid, t) {
    const state = await api.get("/api/sessions/" + sid);
    this.source?.close();
    this.images.clear(); this.masks.clear(); this.editor.reset();
    this.session = state;
    this.t = Math.max(0, Math.min(Number.isFinite(t) ? t : 0, state.video.num_frames - 1));  // a key pressed while opening moves from here
    this.view.setSize(state.video.width, state.video.height);
    $("empty").classList.add("hidden");
    this.applyState(state);
    this.activeObject = state.objects[0]?.id || 0;
    this.renderObjects();
    await this.refreshLists();
    this.source = api.events(`/api/sessions/${sid}/events?since=${state.events}`, {
      frame: (e) => this.onFrame(e), job: (e) => this.onJob(e.job),
    });
    let opened = false;   // after a reconnection (e.g. a server restart) the state is read again
    this.source.onopen = () => { if (opened) this.run(() => this.reloadState()); opened = true; };
    await this.goto(this.t);
    this.view.fit();
  }

  applyState(state) {
    this.session = state;
    this.doneSet = new Set(state.done);
    this.timeline.setState(state);
    this.showJob(state.job);
    this.updateFrameInfo();
  }

  async reloadState() {
    this.applyState(await api.get("/api/sessions/" + this.session.id));
    this.renderObjects();
  }

  colours() {
    const out = {};
    for (const o of this.session?.objects || []) out[o.id] = [1, 3, 5].map((i) => parseInt(o.color.slice(i, i + 2), 16));
    return out;
  }

  renderObjects() { renderObjects(this, $("objects")); }

  ensureObject() {
    if (this.activeObject) return true;
    this.toast("add an object first (N)", true);
    return false;
  }

  async addObject() {
    const obj = await api.send("POST", `/api/sessions/${this.session.id}/objects`, {});
    this.session.objects.push(obj);
    this.activeObject = obj.id;
    this.renderObjects();
  }

  // ------------------------------------------------------------ frames and masks
  remember(map, t, value) {
    map.delete(t); map.set(t, value);
    const v = this.session?.video, perFrame = v ? v.width * v.height * 5 : 1;  // RGBA image + labels
    const keep = Math.max(8, Math.min(256, Math.floor(CACHE_BYTES / perFrame)));
    while (map.size > keep) map.delete(map.keys().next().value);
    return value;
  }

  frameImage(t) {
    if (this.images.has(t)) return this.images.get(t);
    const p = new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error(`cannot load frame ${t}`));
      img.src = api.url(`/api/videos/${this.session.video.id}/frames/${t}`);
    });
    p.catch(() => this.images.delete(t));
    return this.remember(this.images, t, p);
  }

  async mask(t) {
    if (this.masks.has(t)) return this.masks.get(t);
    const { bytes } = await api.getBytes(`/api/sessions/${this.session.id}/masks/${t}?format=raw`);
    return this.remember(this.masks, t, bytes);
  }

  async goto(t) {
    if (!this.session) return;
    t = Math.max(0, Math.min(this.session.video.num_frames - 1, t));
    if (t !== this.t) { this.flushSave(); cancelPolygon(this); }
    this.t = t;
    this.timeline.current = t; this.timeline.draw();
    this.updateFrameInfo();
    history.replaceState(null, "", `#s=${this.session.id}&t=${t}`);
    const [img, labels] = await Promise.all([this.frameImage(t), this.mask(t)]).catch((e) => {
      this.toast(e.message, true); return [null, null];
    });
    if (this.t !== t || !img) return;
    this.view.image = img;
    const { width: w, height: h } = this.session.video;
    this.editor.load(t, labels, w, h, this.session.annotated.includes(t));
    this.view.setMask(labels, this.colours());
    this.updateFrameInfo();
    for (let k = 1; k <= 3; k++) if (t + k < this.session.video.num_frames) this.frameImage(t + k).catch(() => {});
  }

  updateFrameInfo() {
    if (!this.session) return;
    const n = this.session.video.num_frames, t = this.t;
    const s = this.session.scores[t];
    $("frame-label").textContent = `Frame ${t + 1} / ${n}` + (s != null ? ` · uncertainty ${s.toFixed(3)}` : "");
    const badge = $("frame-badge");
    const annotated = this.session.annotated.includes(t);
    badge.textContent = annotated ? "annotated" : this.doneSet.has(t) ? "result" : "empty";
    badge.className = "badge" + (annotated ? " annotated" : "");
    $("undo").disabled = !this.editor.canUndo(); $("redo").disabled = !this.editor.canRedo();
  }

  // ------------------------------------------------------------ editing and saving
  // The editor holds the current frame's labels (a frame being loaded is not editable yet:
  // an edit would land on the previous frame's labels and be replaced when the load ends).
  get frameReady() { return !!this.session && this.editor.t === this.t; }

  canEdit() {
    if (this.session?.job && ["queued", "running"].includes(this.session.job.state)) {
      this.toast("editing is paused while a propagation runs (cancel it to edit)", true);
      return false;
    }
    if (!this.frameReady) {
      this.toast(`frame ${this.t + 1} is still loading`);
      return false;
    }
    return true;
  }

  maskEdited(done) {
    this.view.setMask(this.editor.labels, this.colours());
    if (!done) return;
    this.masks.set(this.t, this.editor.labels);
    this.dirty = true;
    $("save-status").textContent = "unsaved changes…";
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => this.flushSave(), 350);
    this.updateFrameInfo();
  }

  flushSave() {
    clearTimeout(this.saveTimer);
    if (!this.dirty) return this.saving;
    this.dirty = false;
    const t = this.t, bytes = this.editor.labels.slice(), drop = this.editor.backToUnannotated();
    const sid = this.session.id;
    this.saving = this.saving.then(async () => {
      $("save-status").textContent = "saving…";
      try {
        const state = drop && this.session.annotated.includes(t)
          ? await api.send("DELETE", `/api/sessions/${sid}/masks/${t}`)
          : await api.putBytes(`/api/sessions/${sid}/masks/${t}?format=raw`, bytes, "application/octet-stream");
        if (this.session?.id !== sid) return;
        this.applyState(state);
        this.renderObjects();
        $("save-status").textContent = `saved frame ${t + 1}`;
      } catch (e) {
        this.toast(`frame ${t + 1} not saved: ${e.message}`, true);
        $("save-status").textContent = "not saved";
        this.masks.delete(t);
        if (this.t === t) this.goto(t);
      }
    });
    return this.saving;
  }

  async undo(redo = false) {
    if (!this.canEdit() || !(redo ? this.editor.redo() : this.editor.undo())) return;
    this.maskEdited(true);
  }

  async importPng(file) {
    if (!this.session || !this.canEdit()) return;
    await this.flushSave();
    const state = await api.putBytes(`/api/sessions/${this.session.id}/masks/${this.t}`, file, "image/png");
    this.editor.begin();
    this.masks.delete(this.t);
    this.applyState(state);
    this.renderObjects();
    await this.goto(this.t);
    this.toast(`imported ${file.name} into frame ${this.t + 1}`);
  }

  // ------------------------------------------------------------ propagation
  async propagate(direction) {
    if (!this.session) return;
    await this.flushSave();
    const job = await api.send("POST", `/api/sessions/${this.session.id}/propagate`, { direction });
    this.session.job = job;
    this.showJob(job);
  }

  onFrame(e) {
    if (!this.session) return;
    this.session.scores[e.t] = e.score;
    if (!this.doneSet.has(e.t)) { this.doneSet.add(e.t); this.session.done.push(e.t); }
    this.timeline.frameDone(e.t, e.score);
    this.masks.delete(e.t);
    if (e.t === this.t && !this.dirty) this.goto(e.t);
    if (this.session.job) { this.session.job.done = e.done; this.showJob(this.session.job); }
  }

  async onJob(job) {
    if (!this.session || job.session !== this.session.id) return;
    this.session.job = job;
    this.showJob(job);
    if (job.state === "failed") this.toast("propagation failed: " + job.message, true);
    if (["done", "failed", "cancelled"].includes(job.state)) {
      this.masks.clear();
      await this.reloadState();
      await this.goto(this.t);
    }
  }

  showJob(job) {
    const bar = $("progress-bar"), status = $("job-status");
    const active = job && ["queued", "running"].includes(job.state);
    $("cancel-job").disabled = !active;
    document.querySelectorAll("[data-propagate]").forEach((b) => { b.disabled = active || !this.session; });
    if (!job) { bar.style.width = "0"; status.textContent = "idle"; return; }
    const frac = job.total ? job.done / job.total : 0;
    bar.style.width = (job.state === "done" ? 100 : frac * 100) + "%";
    bar.className = job.state === "failed" ? "failed" : job.state === "done" ? "done" : "";
    if (job.state !== "running") this.jobT0 = null;
    else if (this.jobT0 == null) this.jobT0 = performance.now() - job.seconds * 1000;
    const elapsed = this.jobT0 == null ? 0 : (performance.now() - this.jobT0) / 1000;
    const fps = job.done && elapsed > 0 ? ` · ${(job.done / elapsed).toFixed(1)} fps` : "";
    status.textContent = {
      queued: "queued…", running: `${job.direction}: ${job.done} / ${job.total}${fps}`,
      done: `${job.done} frames · ${job.computed} computed · ${job.seconds.toFixed(1)} s`, failed: "failed: " + job.message,
      cancelled: job.message,
    }[job.state];
    status.title = status.textContent;
  }

  async nextUncertain() {
    if (!this.session) return;
    const frames = await api.get(`/api/sessions/${this.session.id}/suggest?k=10`);
    if (!frames.length) { this.toast("no uncertainty scores yet: propagate first"); return; }
    const sorted = frames.slice().sort((a, b) => a - b);
    await this.goto(sorted.find((t) => t > this.t) ?? sorted[0]);
  }

  // ------------------------------------------------------------ playback
  togglePlay() {
    this.playing = !this.playing;
    $("play").textContent = this.playing ? "❚❚" : "▶";
    if (this.playing) this.tick();
  }

  async tick() {
    if (!this.playing || !this.session) return;
    const last = this.session.video.num_frames - 1;
    if (this.t >= last) { this.togglePlay(); return; }
    const started = performance.now();
    await this.goto(this.t + 1);
    const wait = 1000 / Math.min(30, this.session.video.fps || 10) - (performance.now() - started);
    setTimeout(() => this.tick(), Math.max(0, wait));
  }

  // ------------------------------------------------------------ controls
  setTool(tool) {
    if (tool !== "polygon") closePolygon(this);
    this.tool = tool;
    document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("active", b.dataset.tool === tool));
    this.view.canvas.style.cursor = tool === "pan" ? "grab" : "crosshair";
  }

  setBrushSize(size) {
    this.brushSize = Math.max(1, Math.min(80, Math.round(size)));
    $("brush-size").value = this.brushSize;
    $("brush-size-out").textContent = this.brushSize;
    if (this.view.cursor) { this.view.cursor.r = this.brushSize / 2; this.view.draw(); }
  }

  setOverlay(on, opacity) {
    if (on != null) { this.view.overlayOn = on; $("overlay").checked = on; }
    if (opacity != null) { this.view.opacity = opacity; $("opacity").value = Math.round(opacity * 100); $("opacity-out").textContent = Math.round(opacity * 100) + "%"; }
    this.view.draw();
  }
}

const app = new App();
window.afb = app;   // for the console and for automated browser tests
app.run(() => app.start());
