// The objects panel: select, rename, recolour, delete.
import * as api from "./api.js";

export function renderObjects(app, list) {
  list.innerHTML = "";
  const session = app.session;
  if (!session) return;
  session.objects.forEach((obj, i) => {
    const li = document.createElement("li");
    li.className = obj.id === app.activeObject ? "active" : "";
    li.dataset.object = obj.id;
    li.innerHTML = `<span class="key">${i < 9 ? i + 1 : ""}</span>
      <span class="swatch" style="background:${obj.color}"><input type="color" value="${obj.color}" title="Colour"></span>
      <input class="name" type="text" maxlength="100" title="Name (click to edit)">
      <button class="del" title="Delete this object from every frame">✕</button>`;
    const name = li.querySelector(".name");
    name.value = obj.name;
    li.addEventListener("click", (e) => {
      if (e.target.closest(".del")) return;
      app.activeObject = obj.id;
      list.querySelectorAll("li").forEach((x) => x.classList.toggle("active", x === li));
    });
    name.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === "Escape") name.blur(); e.stopPropagation(); });
    name.addEventListener("change", () => app.run(async () => {
      Object.assign(obj, await api.send("PATCH", `/api/sessions/${session.id}/objects/${obj.id}`, { name: name.value }));
    }));
    li.querySelector("input[type=color]").addEventListener("change", (e) => app.run(async () => {
      Object.assign(obj, await api.send("PATCH", `/api/sessions/${session.id}/objects/${obj.id}`, { color: e.target.value }));
      li.querySelector(".swatch").style.background = obj.color;
      app.view.setMask(app.editor.labels, app.colours());
    }));
    li.querySelector(".del").addEventListener("click", () => app.run(async () => {
      if (!confirm(`Delete "${obj.name}" from every frame?`) || !app.canEdit()) return;
      await app.flushSave();
      await api.send("DELETE", `/api/sessions/${session.id}/objects/${obj.id}`);
      if (app.activeObject === obj.id) app.activeObject = 0;
      app.masks.clear();
      await app.reloadState();
      if (!app.activeObject) app.activeObject = app.session.objects[0]?.id || 0;
      app.renderObjects();
      await app.goto(app.t);
    }));
    list.appendChild(li);
  });
}
