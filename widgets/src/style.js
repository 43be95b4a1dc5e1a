// The cytoscape style sheet, built from the theme's colours (see theme.js).

export function style(t) {
  const states = Object.entries(t.states).map(([name, c]) => ({
    selector: `node[state = '${name}']`,
    style: { "background-color": c.fill, color: c.text, "border-color": c.border, "border-style": c.borderStyle, "border-width": 2 },
  }));
  return [
    {
      selector: "node",
      style: {
        "background-color": t.node,
        "border-width": 1.5,
        "border-color": t.muted,
        "font-family": "system-ui, sans-serif",
        "font-size": 12,
        // zoomed out (a big design fitted), labels too small to read are not drawn
        "min-zoomed-font-size": 6,
        color: t.text,
      },
    },
    { selector: "node[label]", style: { label: "data(label)" } },
    {
      selector: "node[kind = 'step']",
      style: {
        shape: "round-rectangle",
        width: 110,
        height: 38,
        "text-valign": "center",
        "text-halign": "center",
        "text-wrap": "ellipsis",
        "text-max-width": 100,
      },
    },
    {
      selector: "node[kind = 'place']",
      style: {
        shape: "ellipse",
        width: 44,
        height: 44,
        "text-valign": "bottom",
        "text-margin-y": 6,
      },
    },
    {
      selector: "node[kind = 'transition']",
      style: {
        shape: "rectangle",
        width: 16,
        height: 48,
        "background-color": t.text,
        "text-valign": "top",
        "text-margin-y": -6,
      },
    },
    {
      selector: "node[kind = 'place'][tokens > 0]",
      style: {
        "background-image": "data(tokenImage)",
        "background-fit": "contain",
      },
    },
    ...states,
    // places and transitions carry their label outside the shape: keep it the text colour
    { selector: "node[kind != 'step']", style: { color: t.text } },
    // a transition that can fire: wider, a glowing halo and ⚡ — unlike a fired one (its
    // state's fill and icon, ✓), whatever the colours
    {
      selector: "node.enabled",
      style: {
        width: 24,
        "border-color": t.ok,
        "border-width": 3,
        "underlay-color": t.ok,
        "underlay-padding": 7,
        "underlay-opacity": 0.35,
        "underlay-shape": "round-rectangle",
        "font-weight": "bold",
      },
    },
    { selector: "node.issue", style: { "border-color": t.error, "border-width": 3, "border-style": "dashed" } },
    { selector: "node:selected", style: { "overlay-color": t.brand, "overlay-opacity": 0.15, "border-color": t.brand, "border-width": 3 } },
    {
      selector: "edge",
      style: {
        width: 2,
        "line-color": t.muted,
        "target-arrow-color": t.muted,
        "target-arrow-shape": "triangle",
        "curve-style": "bezier",
        "font-size": 11,
        color: t.text,
      },
    },
    { selector: "edge[label]", style: { label: "data(label)", "text-background-color": t.bg, "text-background-opacity": 1 } },
    { selector: "edge[?inhibitor]", style: { "target-arrow-shape": "circle", "line-style": "dashed" } },
    { selector: "edge:selected", style: { "line-color": t.brand, "target-arrow-color": t.brand, width: 3 } },
    { selector: "edge.issue", style: { "line-color": t.error, "target-arrow-color": t.error } },
    { selector: ".eh-preview, .eh-ghost-edge", style: { "line-color": t.brand, "target-arrow-color": t.brand, "line-style": "dashed" } },
    { selector: ".eh-ghost-node", style: { opacity: 0 } },
  ];
}

// the label's mark of a transition that can fire now (the legend names it)
export const ENABLED_ICON = "⚡";

export function tokenImage(n, colour) {
  // up to 5 dots, else the number, as an SVG data URI drawn inside the place
  const dots = [];
  if (n <= 5) {
    const spots = [[22, 22], [14, 14], [30, 30], [30, 14], [14, 30]];
    const order = n === 1 ? [0] : n === 2 ? [1, 2] : n === 3 ? [0, 1, 2] : n === 4 ? [1, 2, 3, 4] : [0, 1, 2, 3, 4];
    for (const i of order) dots.push(`<circle cx='${spots[i][0]}' cy='${spots[i][1]}' r='4' fill='${colour}'/>`);
  } else {
    dots.push(`<text x='22' y='27' font-size='14' text-anchor='middle' font-family='sans-serif' fill='${colour}'>${n}</text>`);
  }
  const svg = `<svg xmlns='http://www.w3.org/2000/svg' width='44' height='44'>${dots.join("")}</svg>`;
  return "data:image/svg+xml;utf8," + encodeURIComponent(svg);
}
