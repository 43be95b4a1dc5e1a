// Colours from JupyterLab's theme (its --jp-* CSS variables, read where the designer sits),
// so the canvas follows the light or dark theme; cytoscape takes colours, not CSS variables.

// Run states: a fill, a label colour and an icon each, so a state never rests on colour
// alone. Fills keep >= 3:1 against the canvas (WCAG 1.4.11) and labels >= 4.5:1 against the
// fill (WCAG 1.4.3); tests/browser checks both from the drawn styles in either theme.
const LIGHT = {
  running: { fill: "#0969da", text: "#ffffff" },
  retrying: { fill: "#9a6700", text: "#ffffff" },
  succeeded: { fill: "#1a7f37", text: "#ffffff" },
  failed: { fill: "#cf222e", text: "#ffffff" },
  skipped: { fill: "#6e7781", text: "#ffffff" },
  cancelled: { fill: "#424a53", text: "#ffffff" },
  cached: { fill: "#00838f", text: "#ffffff" },
};
const DARK = {
  running: { fill: "#58a6ff", text: "#0d1117" },
  retrying: { fill: "#d29922", text: "#0d1117" },
  succeeded: { fill: "#3fb950", text: "#0d1117" },
  failed: { fill: "#ff7b72", text: "#0d1117" },
  skipped: { fill: "#8b949e", text: "#0d1117" },
  cancelled: { fill: "#b1bac4", text: "#0d1117" },
  cached: { fill: "#39c5cf", text: "#0d1117" },
};
export const ICONS = {
  pending: "○",
  running: "▶",
  retrying: "↻",
  succeeded: "✓",
  failed: "✗",
  skipped: "⇢",
  cancelled: "⊘",
  cached: "≡", // U+2261: in common fonts (⎘ was drawn as an empty box in Chromium)
};
// a pattern too: states that did not run have a dashed or dotted outline
const BORDER_STYLE = { pending: "dashed", skipped: "dashed", cancelled: "dotted" };

let probe = null;
// any CSS colour (names, rgba, hex) as #rrggbb, blended over `under` when translucent
export function hex(colour, under = "#ffffff") {
  if (!probe) probe = document.createElement("canvas").getContext("2d");
  probe.fillStyle = "#000000";
  probe.fillStyle = colour;
  const c = probe.fillStyle; // "#rrggbb" or "rgba(r, g, b, a)"
  if (c.startsWith("#")) return c;
  const [r, g, b, a] = c.match(/[\d.]+/g).map(Number);
  const base = rgb(hex(under));
  const mix = (v, i) => Math.round(v * a + base[i] * (1 - a));
  return "#" + [mix(r, 0), mix(g, 1), mix(b, 2)].map((v) => v.toString(16).padStart(2, "0")).join("");
}
function rgb(h) {
  return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
}
export function luminance(h) {
  const [r, g, b] = rgb(h).map((v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
export function contrast(a, b) {
  const [x, y] = [luminance(hex(a)), luminance(hex(b))].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

export function readTheme(root) {
  const cs = getComputedStyle(root);
  const v = (name, fallback) => (cs.getPropertyValue(name) || "").trim() || fallback;
  const bg = hex(v("--jp-layout-color0", "#ffffff"));
  const dark = luminance(bg) < 0.2;
  const over = (name, fallback) => hex(v(name, fallback), bg);
  const t = {
    dark,
    bg,
    node: over("--jp-layout-color1", dark ? "#1e1e1e" : "#f6f8fa"),
    text: over("--jp-ui-font-color1", dark ? "#e6edf3" : "#1f2328"),
    muted: over("--jp-ui-font-color2", dark ? "#9da7b3" : "#57606a"),
    border: over("--jp-border-color1", dark ? "#616161" : "#bdbdbd"),
    brand: over("--jp-brand-color1", dark ? "#4493f8" : "#0969da"),
    error: over("--jp-error-color1", dark ? "#ff7b72" : "#cf222e"),
    ok: over("--jp-success-color1", dark ? "#3fb950" : "#1a7f37"),
  };
  const states = { ...(dark ? DARK : LIGHT) };
  // pending did not start: the plain node with a dashed outline the text colour draws
  states.pending = { fill: t.node, text: t.text, border: t.muted };
  for (const [name, s] of Object.entries(states)) {
    s.border = s.border || s.fill;
    s.icon = ICONS[name];
    s.borderStyle = BORDER_STYLE[name] || "solid";
  }
  t.states = states;
  return t;
}
