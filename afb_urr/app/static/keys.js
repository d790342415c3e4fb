// Keyboard shortcuts (listed in the help panel of index.html).
import { cancelPolygon, closePolygon } from "./input.js";

export function bindKeys(app) {
  const help = document.getElementById("help");
  document.addEventListener("keydown", (e) => {
    const typing = e.target.matches("input[type=text], select, textarea");
    if (e.key === "Escape") {
      help.classList.add("hidden");
      cancelPolygon(app);
      return;
    }
    if (typing) return;
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const step = e.shiftKey ? 10 : 1;
    const actions = {
      ArrowLeft: () => app.goto(app.t - step), ArrowRight: () => app.goto(app.t + step),
      a: () => app.goto(app.t - step), d: () => app.goto(app.t + step),
      Home: () => app.goto(0), End: () => app.goto(app.session.video.num_frames - 1),
      " ": () => app.togglePlay(),
      b: () => app.setTool("brush"), e: () => app.setTool("eraser"), p: () => app.setTool("polygon"),
      f: () => app.setTool("fill"), h: () => app.setTool("pan"),
      "[": () => app.setBrushSize(app.brushSize * 0.8 - 1), "]": () => app.setBrushSize(app.brushSize * 1.25 + 1),
      n: () => app.session && app.addObject(),
      o: () => app.setOverlay(!app.view.overlayOn, null),
      g: () => app.propagate("both"),
      u: () => app.nextUncertain(),
      0: () => app.view.fit(), "+": () => app.view.zoomCenter(1.25), "=": () => app.view.zoomCenter(1.25),
      "-": () => app.view.zoomCenter(0.8),
      Enter: () => closePolygon(app),
      "?": () => help.classList.toggle("hidden"),
    };
    let action = null;
    if (ctrl && key === "z") action = () => app.undo(e.shiftKey);
    else if (ctrl && key === "y") action = () => app.undo(true);
    else if (!ctrl && /^[1-9]$/.test(key) && app.session) {
      const obj = app.session.objects[Number(key) - 1];
      if (obj) action = () => { app.activeObject = obj.id; app.renderObjects(); };
    } else if (!ctrl && !e.altKey && key in actions) action = actions[key];
    if (!action) return;
    e.preventDefault();
    if (app.session || ["?", "Enter"].includes(key)) app.run(action);
  });
}
