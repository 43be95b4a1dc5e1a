// The designer's anywidget module as notebooks save it: a few lines. The real view
// (cytoscape and all, ~470 KB) lives once per kernel in a shared widget model, gzipped, and
// is imported once per page; a saved notebook carries it once, not once per designer.
const views = (globalThis.__fluxnbDesignerViews ??= new Map());

async function unpack(model) {
  const ref = String(model.get("bundle") || "").replace(/^IPY_MODEL_/, "");
  if (!views.has(ref)) {
    const loading = (async () => {
      const bundle = await model.widget_manager.get_model(ref);
      let style = document.head.querySelector("style[data-fluxnb=designer]");
      if (!style) {
        style = document.createElement("style");
        style.dataset.fluxnb = "designer";
        document.head.append(style);
      }
      style.textContent = bundle.get("css");
      const bytes = bundle.get("code"); // a DataView of the gzipped module
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      const code = await new Response(stream).text();
      const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
      try {
        return { view: (await import(/* @vite-ignore */ url)).default, bundle };
      } finally {
        URL.revokeObjectURL(url);
      }
    })();
    views.set(ref, loading);
    loading.catch(() => views.delete(ref)); // a failed load is tried again by the next view
  }
  return views.get(ref);
}

export default {
  async render({ model, el }) {
    el.classList.add("fluxnb-designer");
    const { view, bundle } = await unpack(model);
    return view.render({ model, el, bundle });
  },
};
