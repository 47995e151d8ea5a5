// The page's own keys and projector mode, put in the page's <head> by explorer/app/__init__.py; no server calls.
//
// Arrow keys: ← → move the step slider of the tab on screen (the forward view's t, the reverse view's step
// slider once a run has ended) by 1, with Shift by 10, unless the focus is in a field that takes these keys
// itself (a text or number box, a radio button, a slider, a list).
// The slider gets the value and an "input" event, so its own .input handler runs as if it had been dragged.
//
// explorerProjector(on): the "projector" class on <body> (the CSS that explorer/app/__init__.py writes enlarges
// the page's type) and every Plotly figure's fonts and height times the CSS variable --projector-scale (its
// PROJECTOR_SCALE), now and each time a figure is drawn again (a figure the server sends has the normal sizes).
(() => {
  const STEPPED = ["forward-t", "reverse-scrub"];  // elem_ids of the sliders the keys move, the first shown wins
  const TYPING = "input:not([type=checkbox]), textarea, select, [contenteditable=''], [contenteditable=true]";
  const scale = () => parseFloat(getComputedStyle(document.body).getPropertyValue("--projector-scale"));
  const SCALED = ["font.size", "legend.font.size", "height"];  // and each annotation's font; titles stay (17 px),
  // so that they still fit the width, and the height grows with the type, so that legends keep their room

  document.addEventListener("keydown", (event) => {
    if (!["ArrowLeft", "ArrowRight"].includes(event.key) || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target instanceof Element && event.target.closest(TYPING)) return;
    for (const id of STEPPED) {
      const range = document.querySelector(`#${id} input[type=range]`);
      if (!range || range.disabled || !range.checkVisibility()) continue;
      event.preventDefault();
      const step = (event.key === "ArrowRight" ? 1 : -1) * (event.shiftKey ? 10 : 1);
      const value = Math.min(+range.max, Math.max(+range.min, +range.value + step));
      if (value !== +range.value) {
        range.value = value;
        range.dispatchEvent(new Event("input", {bubbles: true}));
      }
      return;
    }
  });

  const path = (obj, key) => key.split(".").reduce((o, k) => o?.[k], obj);

  function enlarge(plot) {  // once per layout the server sent: relayout changes the layout in place
    if (!document.body.classList.contains("projector") || plot._projectorLayout === plot.layout) return;
    const sizes = {}, undo = {};
    const keys = [...SCALED, ...(plot._fullLayout.annotations || []).map((_, i) => `annotations[${i}].font.size`)];
    for (const key of keys) {
      const dotted = key.replace(/\[(\d+)\]/, ".$1");
      sizes[key] = path(plot._fullLayout, dotted) * scale();
      undo[key] = path(plot.layout, dotted) ?? null;
    }
    plot._projectorLayout = plot.layout;
    plot._projectorUndo = undo;
    window.Plotly.relayout(plot, sizes);
  }

  function restore(plot) {
    if (plot._projectorLayout !== plot.layout) return;  // drawn again since: already at the normal sizes
    plot._projectorLayout = null;
    window.Plotly.relayout(plot, plot._projectorUndo);
  }

  const plots = () => document.querySelectorAll(".js-plotly-plot");
  const hook = () => {  // figures drawn since, in any tab, get enlarged each time they are drawn
    for (const plot of plots()) {
      if (plot._projectorHooked || !plot.on) continue;
      plot._projectorHooked = true;
      plot.on("plotly_afterplot", () => enlarge(plot));
      enlarge(plot);
    }
  };
  const watcher = new MutationObserver(hook);  // watches the page only while projector mode is on

  window.explorerProjector = (on) => {
    document.body.classList.toggle("projector", on);
    if (on) {
      hook();
      watcher.observe(document.documentElement, {childList: true, subtree: true});
    } else {
      watcher.disconnect();
    }
    for (const plot of plots()) (on ? enlarge : restore)(plot);
    return on;
  };
})();
