"use strict";(self.rspackChunkfluxnb_lab=self.rspackChunkfluxnb_lab||[]).push([[877],{432(e,t,n){var r=n(601),i=n.n(r),a=n(314),o=(n.n(a))()(i());o.push([e.id,`/* The fluxnb designer: toolbar, canvas and side panel, in JupyterLab's theme (its --jp-*
   variables, light or dark; the fallbacks are for front ends without them). */
.fluxnb-designer {
  --fx-bg: var(--jp-layout-color0, #fff);
  --fx-panel: var(--jp-layout-color1, #f6f8fa);
  --fx-hover: var(--jp-layout-color2, #eaeef2);
  --fx-text: var(--jp-ui-font-color1, #1f2328);
  --fx-muted: var(--jp-ui-font-color2, #57606a);
  --fx-border: var(--jp-border-color1, #d0d7de);
  --fx-brand: var(--jp-brand-color1, #0969da);
  --fx-error: var(--jp-error-color1, #cf222e);
  --fx-ok: var(--jp-success-color1, #1a7f37);
  --fx-warn: var(--jp-warn-color1, #bf8700);
  --fx-mono: var(--jp-code-font-family, ui-monospace, SFMono-Regular, monospace);
  font-family: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  font-size: 13px;
  border: 1px solid var(--fx-border);
  border-radius: 6px;
  outline: none;
  background: var(--fx-bg);
  color: var(--fx-text);
}
.fluxnb-designer:focus-within { border-color: var(--fx-brand); }
.fluxnb-designer .fx-toolbar {
  display: flex; flex-wrap: wrap; gap: 4px; align-items: center;
  padding: 6px; border-bottom: 1px solid var(--fx-border); background: var(--fx-panel);
}
.fluxnb-designer .fx-palette { display: inline-flex; gap: 4px; margin-right: 8px; order: -1; }
.fluxnb-designer .fx-btn {
  font: inherit; padding: 3px 9px; border: 1px solid var(--fx-border); border-radius: 5px;
  background: var(--fx-bg); cursor: pointer; color: inherit;
}
.fluxnb-designer .fx-btn:hover:not(:disabled) { background: var(--fx-hover); }
.fluxnb-designer .fx-btn:disabled { opacity: 0.45; cursor: default; }
.fluxnb-designer .fx-zoom-in, .fluxnb-designer .fx-zoom-out { min-width: 28px; font-weight: 600; }
.fluxnb-designer .fx-run { border-color: var(--fx-ok); color: var(--fx-ok); font-weight: 600; }
.fluxnb-designer .fx-body { display: flex; }
.fluxnb-designer .fx-canvas {
  position: relative; flex: 1 1 auto; min-width: 0; min-height: 300px; outline: none;
  background: var(--fx-bg);
}
.fluxnb-designer .fx-side {
  flex: 0 0 260px; border-left: 1px solid var(--fx-border); padding: 8px; overflow: auto;
  max-height: 520px; background: var(--fx-panel);
}
.fluxnb-designer .fx-title { font-weight: 600; margin-bottom: 6px; }
.fluxnb-designer .fx-kind { text-transform: uppercase; font-size: 11px; color: var(--fx-muted); margin: 4px 0; }
.fluxnb-designer .fx-field { display: flex; flex-direction: column; margin: 4px 0; }
.fluxnb-designer .fx-key { font-size: 11px; color: var(--fx-muted); }
.fluxnb-designer .fx-input, .fluxnb-designer .fx-yaml-text {
  font: 12px var(--fx-mono); padding: 3px 5px; color: var(--fx-text);
  background: var(--fx-bg); border: 1px solid var(--fx-border); border-radius: 4px;
}
.fluxnb-designer .fx-input:focus, .fluxnb-designer .fx-yaml-text:focus {
  outline: 1px solid var(--fx-brand); border-color: var(--fx-brand);
}
.fluxnb-designer .fx-hint { color: var(--fx-muted); line-height: 1.4; }
.fluxnb-designer .fx-issues { margin-top: 8px; border-left: 3px solid var(--fx-error); padding-left: 6px; }
.fluxnb-designer .fx-issue { color: var(--fx-error); margin: 2px 0; }
.fluxnb-designer .fx-yaml-text {
  width: 100%; min-height: 220px; margin-top: 8px; box-sizing: border-box;
}
.fluxnb-designer .fx-legend {
  display: flex; flex-wrap: wrap; gap: 4px 10px; margin-top: 12px; padding-top: 6px;
  border-top: 1px solid var(--fx-border); font-size: 11px; color: var(--fx-muted);
  position: sticky; bottom: -8px; padding-bottom: 6px; background: var(--fx-panel);
}
.fluxnb-designer .fx-legend-item { display: inline-flex; align-items: center; gap: 4px; }
.fluxnb-designer .fx-swatch {
  display: inline-block; width: 16px; height: 16px; line-height: 16px; text-align: center;
  border-radius: 4px; border-width: 1.5px; font-size: 11px; box-sizing: border-box;
}
/* the message line: the panel's own background (readable text in both themes: JupyterLab
   Dark's --jp-warn-color3 is a light amber under light text) and a warning-coloured edge */
.fluxnb-designer .fx-message {
  display: none; padding: 5px 8px; border-top: 1px solid var(--fx-border);
  border-left: 4px solid var(--fx-warn); background: var(--fx-hover); color: var(--fx-text);
}
.fluxnb-designer .fx-handle {
  display: none; position: absolute; z-index: 10; width: 12px; height: 12px;
  border-radius: 50%; background: var(--fx-brand); border: 2px solid var(--fx-bg); cursor: crosshair;
  box-shadow: 0 0 0 1px var(--fx-brand);
}
.fluxnb-designer .fx-tooltip {
  display: none; position: absolute; z-index: 11; max-width: 280px; white-space: pre-wrap;
  background: var(--fx-text); color: var(--fx-bg); padding: 5px 7px; border-radius: 4px; font-size: 12px;
  pointer-events: none;
}
.fluxnb-designer .fx-menu {
  display: none; position: absolute; z-index: 12; background: var(--fx-bg); border: 1px solid var(--fx-border);
  border-radius: 5px; box-shadow: 0 4px 12px rgba(0, 0, 0, 0.15); min-width: 110px;
}
.fluxnb-designer .fx-menu-item { padding: 5px 10px; cursor: pointer; }
.fluxnb-designer .fx-menu-item:hover { background: var(--fx-hover); }
.fluxnb-designer .fx-minimap {
  display: none; position: absolute; right: 8px; bottom: 8px; z-index: 9;
  border: 1px solid var(--fx-border); border-radius: 4px; cursor: pointer;
  box-shadow: 0 2px 6px rgba(0, 0, 0, 0.15);
}
/* the palette of the notebook's functions, the empty design's hint, the typed inspector */
.fluxnb-designer .fx-functions {
  flex: 0 0 150px; border-right: 1px solid var(--fx-border); padding: 6px; overflow: auto;
  max-height: 520px; background: var(--fx-panel); display: flex; flex-direction: column; gap: 4px;
}
.fluxnb-designer .fx-functions-head { font-weight: 600; }
.fluxnb-designer .fx-function {
  padding: 3px 6px; border: 1px solid var(--fx-border); border-radius: 5px; background: var(--fx-bg);
  cursor: grab; user-select: none; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
}
.fluxnb-designer .fx-function:hover { border-color: var(--fx-brand); }
.fluxnb-designer .fx-function-name { font-family: var(--fx-mono); }
.fluxnb-designer .fx-function-params { color: var(--fx-muted); font-size: 11px; }
.fx-ghost {
  position: fixed; z-index: 10000; pointer-events: none; padding: 4px 10px; border-radius: 6px;
  background: var(--jp-brand-color1, #0969da); color: #fff; font: 12px system-ui, sans-serif; opacity: 0.85;
}
.fluxnb-designer .fx-empty-hint {
  display: none; position: absolute; left: 50%; top: 40%; transform: translate(-50%, -50%);
  max-width: 320px; text-align: center; color: var(--fx-muted); line-height: 1.5; pointer-events: none;
  border: 1px dashed var(--fx-border); border-radius: 8px; padding: 12px 16px; background: var(--fx-bg);
}
.fluxnb-designer .fx-find { width: 9em; margin-left: auto; }
.fluxnb-designer .fx-invalid, .fluxnb-designer .fx-invalid:focus { border-color: var(--fx-error); outline-color: var(--fx-error); }
.fluxnb-designer .fx-why { color: var(--fx-error); font-size: 11px; }
.fluxnb-designer .fx-why:empty { display: none; }
.fluxnb-designer .fx-help { display: none; color: var(--fx-muted); font-size: 11px; line-height: 1.35; }
.fluxnb-designer .fx-field:focus-within .fx-help { display: block; }
.fluxnb-designer .fx-group { margin: 6px 0; }
.fluxnb-designer .fx-group-title { font-weight: 600; cursor: pointer; color: var(--fx-muted); text-transform: uppercase; font-size: 11px; }
.fluxnb-designer .fx-activation { display: flex; flex-direction: column; gap: 3px; }
.fluxnb-designer .fx-attempts { margin: 6px 0; padding: 4px 6px; border: 1px solid var(--fx-border); border-radius: 5px; background: var(--fx-bg); }
.fluxnb-designer .fx-attempt { margin: 4px 0; }
.fluxnb-designer .fx-attempt-head { font-weight: 600; }
.fluxnb-designer .fx-attempt-failed .fx-attempt-head, .fluxnb-designer .fx-attempt-error { color: var(--fx-error); }
.fluxnb-designer .fx-traceback pre, .fluxnb-designer .fx-output {
  font: 11px var(--fx-mono); white-space: pre-wrap; margin: 2px 0; max-height: 160px; overflow: auto;
}
/* the token game (net mode): its moves, and the firings so far as a list */
.fluxnb-designer .fx-game {
  display: flex; flex-direction: column; gap: 4px; padding: 4px 6px;
  border-bottom: 1px solid var(--fx-border); background: var(--fx-panel);
}
.fluxnb-designer .fx-game-controls { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
.fluxnb-designer .fx-speed, .fluxnb-designer .fx-seed {
  font: inherit; color: var(--fx-text); background: var(--fx-bg);
  border: 1px solid var(--fx-border); border-radius: 5px; padding: 2px 4px;
}
.fluxnb-designer .fx-seed { width: 4.5em; }
.fluxnb-designer .fx-autoplay, .fluxnb-designer .fx-game-legend { color: var(--fx-muted); margin-left: 6px; }
.fluxnb-designer .fx-history {
  display: flex; gap: 4px; margin: 0; padding: 0; list-style: none; overflow-x: auto;
  white-space: nowrap; font-size: 12px;
}
.fluxnb-designer .fx-fired {
  padding: 1px 7px; border: 1px solid var(--fx-border); border-radius: 10px; background: var(--fx-bg);
}
.fluxnb-designer .fx-fired:last-child { border-color: var(--fx-ok); font-weight: 600; }
.fluxnb-designer .fx-fired-failed { border-color: var(--fx-error); color: var(--fx-error); }
`,""]),n.d(t,{},{A:o})},838(e,t,n){var r=n(601),i=n.n(r),a=n(314),o=(n.n(a))()(i());o.push([e.id,`/* The designer in a main-area tab (it fills the tab), the Runs panel; JupyterLab's theme
   variables only, so both follow light and dark themes. */
.fluxnb-lab-editor {
  display: flex;
  flex-direction: column;
  overflow: hidden;
  background: var(--jp-layout-color0);
}
.fluxnb-lab-editor > .fluxnb-designer {
  flex: 1 1 auto;
  display: flex;
  flex-direction: column;
  min-height: 0;
}
.fluxnb-lab-editor > .fluxnb-designer > .fx-body {
  flex: 1 1 auto;
  min-height: 0;
}
.fluxnb-lab-editor > .fluxnb-designer .fx-canvas {
  height: 100% !important;
}
.fluxnb-lab-editor > .fluxnb-designer .fx-side {
  max-height: none;
}
/* the palette lists a kernel's functions: a file has no kernel (steps run by import) */
.fluxnb-lab-editor > .fluxnb-designer .fx-functions,
.fluxnb-lab-editor > .fluxnb-designer .fx-game {
  display: none; /* and the token game fires a net's transitions in the kernel */
}
.fluxnb-lab-error {
  padding: 16px;
  color: var(--jp-ui-font-color1);
}
.fluxnb-lab-error pre {
  white-space: pre-wrap;
  color: var(--jp-error-color1);
}

.fluxnb-runs {
  display: flex;
  flex-direction: column;
  padding: 8px;
  gap: 6px;
  overflow: auto;
  color: var(--jp-ui-font-color1);
  background: var(--jp-layout-color1);
  font-size: var(--jp-ui-font-size1);
}
.fluxnb-runs-head {
  display: flex;
  align-items: center;
  justify-content: space-between;
}
.fluxnb-runs-head h2 {
  margin: 0;
  font-size: var(--jp-ui-font-size2);
}
.fluxnb-runs-who {
  color: var(--jp-ui-font-color2);
}
.fluxnb-runs-filters {
  display: flex;
  flex-wrap: wrap;
  gap: 4px;
}
.fluxnb-runs-filter {
  display: flex;
  flex-direction: column;
  flex: 1 1 80px;
}
.fluxnb-runs-filter input,
.fluxnb-runs-filter select {
  width: 100%;
  box-sizing: border-box;
}
.fluxnb-runs-error {
  color: var(--jp-error-color1);
  white-space: pre-wrap;
}
.fluxnb-runs-list {
  list-style: none;
  margin: 0;
  padding: 0;
}
.fluxnb-run {
  display: grid;
  grid-template-columns: 6.5em 1fr auto;
  gap: 6px;
  padding: 3px 4px;
  border-bottom: 1px solid var(--jp-border-color2);
  cursor: pointer;
}
.fluxnb-run:hover,
.fluxnb-run[aria-selected="true"] {
  background: var(--jp-layout-color2);
}
.fluxnb-run:focus-visible {
  outline: 2px solid var(--jp-brand-color1);
}
.fluxnb-run-status {
  font-weight: 600;
}
.fluxnb-run-when {
  color: var(--jp-ui-font-color2);
}
.fluxnb-status-succeeded .fluxnb-run-status {
  color: var(--jp-success-color1);
}
.fluxnb-status-failed .fluxnb-run-status,
.fluxnb-status-interrupted .fluxnb-run-status {
  color: var(--jp-error-color1);
}
.fluxnb-status-running .fluxnb-run-status,
.fluxnb-status-queued .fluxnb-run-status {
  color: var(--jp-info-color1);
}
.fluxnb-run-detail h3 {
  margin: 8px 0 2px;
  font-size: var(--jp-ui-font-size1);
}
.fluxnb-run-id {
  color: var(--jp-ui-font-color2);
  font-family: var(--jp-code-font-family);
}
.fluxnb-run-error {
  white-space: pre-wrap;
  color: var(--jp-error-color1);
}
.fluxnb-run-actions {
  display: flex;
  gap: 4px;
  margin: 6px 0;
}
.fluxnb-run-detail {
  overflow-x: auto;
}
.fluxnb-run-steps {
  width: 100%;
  border-collapse: collapse;
}
.fluxnb-run-steps th,
.fluxnb-run-steps td {
  text-align: left;
  padding: 2px 4px;
  border-bottom: 1px solid var(--jp-border-color2);
}
.fluxnb-run-step-error td {
  color: var(--jp-error-color1);
}
.fluxnb-run-timeline-img {
  max-width: 100%;
  margin-top: 6px;
  background: white;
  cursor: zoom-in;
}
.fluxnb-timeline {
  overflow: auto;
  background: white;
}
.fluxnb-triggers h2 {
  margin: 12px 0 4px;
  font-size: var(--jp-ui-font-size2);
}
.fluxnb-trigger-list {
  list-style: none;
  margin: 0;
  padding: 0;
}
.fluxnb-trigger {
  display: flex;
  flex-wrap: wrap;
  gap: 2px 8px;
  padding: 3px 4px;
  border-bottom: 1px solid var(--jp-border-color2);
}
.fluxnb-trigger-id {
  font-weight: 600;
}
.fluxnb-trigger-when,
.fluxnb-trigger-last {
  color: var(--jp-ui-font-color2);
}
`,""]),n.d(t,{},{A:o})},820(e,t,n){n.r(t),n.d(t,{default:()=>ev});var r=n(369),i=n(2),a=n(177),o=n(861),s=n(256),l=n(72),d=n.n(l),u=n(825),p=n.n(u),f=n(659),c=n.n(f),x=n(56),h=n.n(x),g=n(540),m=n.n(g),b=n(113),y=n.n(b),v=n(432),w={};w.styleTagTransform=y(),w.setAttributes=h(),w.insert=c().bind(null,"head"),w.domAPI=p(),w.insertStyleElement=m(),d()(v.A,w),v.A&&v.A.locals&&v.A.locals;var k=n(838),$={};$.styleTagTransform=y(),$.setAttributes=h(),$.insert=c().bind(null,"head"),$.domAPI=p(),$.insertStyleElement=m(),d()(k.A,$),k.A&&k.A.locals&&k.A.locals;var E=n(116),C=n(660),j=n(748);function S(e,t,n){let r=document.createElement(e);return t&&(r.className=t),void 0!==n&&(r.textContent=n),r}function L(e){let t=Object.entries(e.states).map(([e,t])=>({selector:`node[state = '${e}']`,style:{"background-color":t.fill,color:t.text,"border-color":t.border,"border-style":t.borderStyle,"border-width":2}}));return[{selector:"node",style:{"background-color":e.node,"border-width":1.5,"border-color":e.muted,"font-family":"system-ui, sans-serif","font-size":12,"min-zoomed-font-size":6,color:e.text}},{selector:"node[label]",style:{label:"data(label)"}},{selector:"node[kind = 'step']",style:{shape:"round-rectangle",width:110,height:38,"text-valign":"center","text-halign":"center","text-wrap":"ellipsis","text-max-width":100}},{selector:"node[kind = 'place']",style:{shape:"ellipse",width:44,height:44,"text-valign":"bottom","text-margin-y":6}},{selector:"node[kind = 'transition']",style:{shape:"rectangle",width:16,height:48,"background-color":e.text,"text-valign":"top","text-margin-y":-6}},{selector:"node[kind = 'place'][tokens > 0]",style:{"background-image":"data(tokenImage)","background-fit":"contain"}},...t,{selector:"node[kind != 'step']",style:{color:e.text}},{selector:"node.enabled",style:{width:24,"border-color":e.ok,"border-width":3,"underlay-color":e.ok,"underlay-padding":7,"underlay-opacity":.35,"underlay-shape":"round-rectangle","font-weight":"bold"}},{selector:"node.issue",style:{"border-color":e.error,"border-width":3,"border-style":"dashed"}},{selector:"node:selected",style:{"overlay-color":e.brand,"overlay-opacity":.15,"border-color":e.brand,"border-width":3}},{selector:"edge",style:{width:2,"line-color":e.muted,"target-arrow-color":e.muted,"target-arrow-shape":"triangle","curve-style":"bezier","font-size":11,color:e.text}},{selector:"edge[label]",style:{label:"data(label)","text-background-color":e.bg,"text-background-opacity":1}},{selector:"edge[?inhibitor]",style:{"target-arrow-shape":"circle","line-style":"dashed"}},{selector:"edge:selected",style:{"line-color":e.brand,"target-arrow-color":e.brand,width:3}},{selector:"edge.issue",style:{"line-color":e.error,"target-arrow-color":e.error}},{selector:".eh-preview, .eh-ghost-edge",style:{"line-color":e.brand,"target-arrow-color":e.brand,"line-style":"dashed"}},{selector:".eh-ghost-node",style:{opacity:0}}]}let A={running:{fill:"#0969da",text:"#ffffff"},retrying:{fill:"#9a6700",text:"#ffffff"},succeeded:{fill:"#1a7f37",text:"#ffffff"},failed:{fill:"#cf222e",text:"#ffffff"},skipped:{fill:"#6e7781",text:"#ffffff"},cancelled:{fill:"#424a53",text:"#ffffff"},cached:{fill:"#00838f",text:"#ffffff"}},z={running:{fill:"#58a6ff",text:"#0d1117"},retrying:{fill:"#d29922",text:"#0d1117"},succeeded:{fill:"#3fb950",text:"#0d1117"},failed:{fill:"#ff7b72",text:"#0d1117"},skipped:{fill:"#8b949e",text:"#0d1117"},cancelled:{fill:"#b1bac4",text:"#0d1117"},cached:{fill:"#39c5cf",text:"#0d1117"}},R={pending:"○",running:"▶",retrying:"↻",succeeded:"✓",failed:"✗",skipped:"⇢",cancelled:"⊘",cached:"≡"},T={pending:"dashed",skipped:"dashed",cancelled:"dotted"},_=null;function I(e,t="#ffffff"){_||(_=document.createElement("canvas").getContext("2d")),_.fillStyle="#000000",_.fillStyle=e;let n=_.fillStyle;if(n.startsWith("#"))return n;let[r,i,a,o]=n.match(/[\d.]+/g).map(Number),s=M(I(t)),l=(e,t)=>Math.round(e*o+s[t]*(1-o));return"#"+[l(r,0),l(i,1),l(a,2)].map(e=>e.toString(16).padStart(2,"0")).join("")}function M(e){return[1,3,5].map(t=>parseInt(e.slice(t,t+2),16))}function P(e){let t=getComputedStyle(e),n=(e,n)=>(t.getPropertyValue(e)||"").trim()||n,r=I(n("--jp-layout-color0","#ffffff")),i=.2>function(e){let[t,n,r]=M(e).map(e=>{let t=e/255;return t<=.04045?t/12.92:((t+.055)/1.055)**2.4});return .2126*t+.7152*n+.0722*r}(r),a=(e,t)=>I(n(e,t),r),o={dark:i,bg:r,node:a("--jp-layout-color1",i?"#1e1e1e":"#f6f8fa"),text:a("--jp-ui-font-color1",i?"#e6edf3":"#1f2328"),muted:a("--jp-ui-font-color2",i?"#9da7b3":"#57606a"),border:a("--jp-border-color1",i?"#616161":"#bdbdbd"),brand:a("--jp-brand-color1",i?"#4493f8":"#0969da"),error:a("--jp-error-color1",i?"#ff7b72":"#cf222e"),ok:a("--jp-success-color1",i?"#3fb950":"#1a7f37")},s={...i?z:A};for(let[e,t]of(s.pending={fill:o.node,text:o.text,border:o.muted},Object.entries(s)))t.border=t.border||t.fill,t.icon=R[e],t.borderStyle=T[e]||"solid";return o.states=s,o}let B=["basics","resilience","advanced"],O=/^\s*(\d+(\.\d*)?|\.\d+)\s*$|^\s*((\d+(\.\d*)?|\.\d+)(us|µs|ms|s|m|h))+\s*$/;function D(e,t,n,r){let i=()=>{let t=r?r(e.value):"";e.classList.toggle("fx-invalid",!!t),e.title=t||e.dataset.help||"";let n=e.parentElement&&e.parentElement.querySelector(".fx-why");return n&&(n.textContent=t||""),t},a=()=>{e.value===e.defaultValue||i()||(t(e.value),e.defaultValue=e.value)};return e.addEventListener("input",i),e.addEventListener("change",a),e.addEventListener("keydown",t=>{"Enter"===t.key?(t.preventDefault(),a()):"Escape"===t.key&&(t.preventDefault(),e.value=e.defaultValue,i(),n.focus())}),e}function N(e,t){let n=e;for(let e of t.split(".")){if(null==n)return;n=n[e]}return n}let U=e=>null==e?"":Array.isArray(e)&&e.every(e=>"string"==typeof e)?e.join(", "):"object"==typeof e?JSON.stringify(e):String(e),q={ArrowLeft:[-1,0],ArrowRight:[1,0],ArrowUp:[0,-1],ArrowDown:[0,1]};var F=n(909),Y=n.n(F);j.A.use(Y());var V=n(267);j.A.use(V.A);let W={name:"dagre",rankDir:"LR",nodeSep:40,rankSep:80,edgeSep:20,ranker:"network-simplex",fit:!1,animate:!1},J=[.5,1,2,5,10,20],X=function({model:e,el:t,bundle:n}){t.classList.add("fluxnb-designer"),t.setAttribute("data-jp-suppress-context-menu",""),t.tabIndex=0;let r=P(t),i=S("div","fx-toolbar"),a=S("div","fx-body"),o=S("div","fx-canvas");o.tabIndex=-1;let s=S("div","fx-side"),l=S("div","fx-message"),d=S("div","fx-tooltip"),u=S("div","fx-handle");u.title="drag to connect";let p=S("div","fx-menu");o.append(u,d,p),a.append(o,s),t.append(i,a,l),o.style.height=`${e.get("height")}px`;let f=(0,j.A)({container:o,style:L(r),layout:{name:"preset"},boxSelectionEnabled:!0,minZoom:.02,maxZoom:3});t.fluxnb={cy:f,model:e,theme:()=>r},o.fluxnb=t.fluxnb;let c={model:e,bundle:n,root:t,cy:f,body:a,canvas:o,side:s,toolbar:i,message:l,tooltip:d,handle:u,menu:p,syncing:!1,send:t=>e.send(t),theme:()=>r,mode:()=>(e.get("graph")||{}).mode||"dag",selection:()=>f.$(":selected").map(e=>e.id()),deleteSelection(){let e=c.selection();e.length&&c.send({type:"delete",ids:e})},zoomBy(e){let t=Math.min(f.maxZoom(),Math.max(f.minZoom(),f.zoom()*e));f.zoom({level:t,renderedPosition:{x:f.width()/2,y:f.height()/2}})},toggleYaml:()=>b.toggleYaml(),layout:()=>h.layout(),cancel:()=>y.cancel()},x=function(e){let{cy:t,model:n,toolbar:r,send:i}=e,a={},o=(e,t,n,i)=>{let o=S("button",`fx-btn fx-${e}`,t);return o.title=n,o.dataset.action=e,o.addEventListener("click",i),r.append(o),a[e]=o,o},s=()=>{let e=t.extent();return{x:(e.x1+e.x2)/2+(Math.random()-.5)*40,y:(e.y1+e.y2)/2+(Math.random()-.5)*40}},l=S("span","fx-palette");return r.append(l),o("undo","↶ Undo","undo (Ctrl+Z)",()=>i({type:"undo"})),o("redo","↷ Redo","redo (Ctrl+Y)",()=>i({type:"redo"})),o("delete","✕ Delete","delete the selection (Delete)",()=>e.deleteSelection()),o("layout","⇶ Layout","lay out left to right in layers, with few crossings",()=>e.layout()),o("zoom-in","+","zoom in (Ctrl+wheel)",()=>e.zoomBy(1.25)),o("zoom-out","−","zoom out (Ctrl+wheel)",()=>e.zoomBy(.8)),o("fit","⤢ Fit","fit the design in view",()=>t.fit(void 0,30)),o("run","▶ Run","run the design (nets: then click an enabled transition to fire it)",()=>{e.message.textContent="running…",e.message.style.display="block",i({type:"run"})}),o("export","⬇ Export","download the manifest (YAML), as a %%fluxroute cell or fluxnb run takes it",()=>{let e=((n.get("graph")||{}).name||"design").replace(/[^\w.-]+/g,"_"),t=document.createElement("a");t.href=URL.createObjectURL(new Blob([n.get("yaml_text")||""],{type:"application/x-yaml"})),t.download=`${e}.yaml`,document.body.append(t),t.click(),t.remove(),setTimeout(()=>URL.revokeObjectURL(t.href),1e3)}),o("yaml","YAML","show or edit the manifest",()=>e.toggleYaml()),{draw(){a.undo.disabled=!n.get("can_undo"),a.redo.disabled=!n.get("can_redo"),function(){for(let[t,n]of(l.replaceChildren(),"dag"===e.mode()?[["step","+ Step"]]:[["place","+ Place"],["transition","+ Transition"]])){let r=S("button",`fx-btn fx-add-${t}`,n);r.dataset.action=`add-${t}`,r.title=`add a ${t}`,r.addEventListener("click",()=>i({type:"add",kind:t,...e.selection().length?{}:s()})),l.append(r)}}()}}}(c),h=function(e){let{cy:t,model:n,send:r,toolbar:i}=e,a=S("input","fx-input fx-find");a.type="search",a.placeholder="find a node…",a.dataset.key="find",a.title="find a node: Enter jumps to it and selects it";let o=S("datalist");function s(e){let n=e.trim().toLowerCase();if(!n)return!1;let r=t.nodes().filter(e=>!e.hasClass("eh-ghost-node")),i=r.filter(e=>e.id().toLowerCase()===n)[0]||r.filter(e=>e.id().toLowerCase().includes(n)||String(e.data("label")||"").toLowerCase().includes(n))[0];return!!i&&(t.elements().unselect(),i.select(),t.zoom({level:Math.max(t.zoom(),1),renderedPosition:i.renderedPosition()}),t.center(i),!0)}return o.id=`fx-find-${Math.random().toString(36).slice(2)}`,a.setAttribute("list",o.id),i.append(a,o),a.addEventListener("keydown",t=>{"Enter"===t.key?(t.preventDefault(),a.classList.toggle("fx-invalid",!s(a.value))):"Escape"===t.key&&(a.value="",a.classList.remove("fx-invalid"),e.root.focus())}),a.addEventListener("focus",()=>{let e=n.get("graph")||{nodes:[]};o.replaceChildren(...e.nodes.slice(0,500).map(e=>Object.assign(S("option"),{value:e.id})))}),{layout:function(){let e=t.nodes().filter(e=>!e.hasClass("eh-ghost-node"));if(e.empty())return;let n=t.edges().filter(e=>!e.hasClass("eh-preview")&&!e.hasClass("eh-ghost-edge"));e.union(n).layout(W).run(),r({type:"layout",moves:e.map(e=>({id:e.id(),x:Math.round(e.position("x")),y:Math.round(e.position("y"))}))}),t.fit(void 0,30)},jump:s}}(c),g=function(e){let{model:t,canvas:n,cy:r,send:i}=e,a=S("div","fx-functions"),o=S("div","fx-functions-head","Functions"),s=S("input","fx-input fx-function-search");s.type="search",s.placeholder="search…",s.dataset.key="function-search";let l=S("div","fx-function-list");a.append(o,s,l),e.body.prepend(a);let d=S("div","fx-empty-hint");function u(){let e=s.value.trim().toLowerCase(),n=t.get("functions")||[];for(let t of(l.replaceChildren(),n)){if(e&&!t.name.toLowerCase().includes(e)&&!(t.doc||"").toLowerCase().includes(e))continue;let n=S("div","fx-function");n.dataset.name=t.name,n.title=`${t.signature}${t.doc?"\n"+t.doc:""}
drag onto the canvas, or click: a step running it`,n.append(S("span","fx-function-name",t.name),S("span","fx-function-params",`(${t.params.map(e=>e.name).join(", ")})`)),n.addEventListener("mousedown",e=>{var n,r;n=e,r=t.name,void(0===n.button&&(n.preventDefault(),p={name:r,x0:n.clientX,y0:n.clientY,ghost:null}))}),n.tabIndex=0,n.setAttribute("role","button"),n.addEventListener("keydown",e=>{("Enter"===e.key||" "===e.key)&&(e.preventDefault(),i({type:"add_function",name:t.name}))}),l.append(n)}l.children.length||l.append(S("div","fx-hint",n.length?"no function matches":"define functions in the notebook: they show here"))}n.append(d),s.addEventListener("input",u),s.addEventListener("focus",()=>i({type:"functions"})),s.addEventListener("keydown",t=>{if("Enter"===t.key){t.preventDefault();let e=l.querySelector(".fx-function");e&&i({type:"add_function",name:e.dataset.name})}else"Escape"===t.key&&(s.value="",u(),e.root.focus())});let p=null,f=e=>{!p||!p.ghost&&4>Math.hypot(e.clientX-p.x0,e.clientY-p.y0)||(p.ghost||(p.ghost=S("div","fx-ghost",p.name),document.body.append(p.ghost)),p.ghost.style.left=`${e.clientX+8}px`,p.ghost.style.top=`${e.clientY+8}px`)},c=t=>{if(!p)return;let{name:a,ghost:o}=p;if(p=null,!o)return void i({type:"add_function",name:a});o.remove();let s=n.getBoundingClientRect();if(t.clientX<s.left||t.clientX>s.right||t.clientY<s.top||t.clientY>s.bottom)return;let l=r.pan(),d=r.zoom();i({type:"add_function",name:a,x:(t.clientX-s.left-l.x)/d,y:(t.clientY-s.top-l.y)/d}),e.root.focus()};return window.addEventListener("mousemove",f),window.addEventListener("mouseup",c),{draw:function(){let n=t.get("graph")||{nodes:[]},r="dag"===e.mode();a.style.display=r?"":"none",d.style.display=n.nodes.length?"none":"block",d.textContent=r?"Empty design. Drag a function from the list on the left onto the canvas: it becomes a step, connected to the steps its parameters name. Or press + Step.":"Empty net. Press + Place and + Transition, then drag from a node's blue handle to connect.",u()},destroy(){window.removeEventListener("mousemove",f),window.removeEventListener("mouseup",c),p&&p.ghost&&p.ghost.remove()}}}(c);!function(e){let{model:t,send:n}=e,r=S("div","fx-game"),i=S("div","fx-game-controls"),a=S("ol","fx-history");a.title="firings so far, oldest first (Back undoes the last)",r.append(i,a),e.toolbar.after(r);let o=(e,t={})=>n({type:"game",action:e,...t}),s=(e,t,n,r)=>{let a=S("button",`fx-btn fx-game-${e}`,t);return a.dataset.action=`game-${e}`,a.title=n,a.addEventListener("click",r||(()=>o(e))),i.append(a),a},l=(e,n)=>{t.set(e,n),t.save_changes()};s("step","⇥ Step","fire one enabled transition, chosen by the net's rule (priority, then the first declared; choice: random picks by the seed)");let d=s("play","▶ Play","fire a step at a time at the chosen speed until nothing can fire",()=>t.get("playing")?o("pause"):o("play",{speed:t.get("speed")})),u=S("select","fx-speed");for(let e of(u.title="Play's speed (firings per second)",J))u.append(new Option(`${e}/s`,String(e)));u.addEventListener("change",()=>l("speed",Number(u.value))),i.append(u),s("step_random","⚄ Random","fire one enabled transition chosen at random (seeded)");let p=S("input","fx-seed");p.type="number",p.title="Random's seed: the same seed, the same choices (Reset replays them)",p.addEventListener("change",()=>l("seed",Math.trunc(Number(p.value)||0))),i.append(p),s("back","⇤ Back","undo the last firing"),s("reset","⟲ Reset","start again from the initial marking");let f=S("label","fx-autoplay"),c=S("input");function x(){let n="net"===e.mode();if(r.style.display=n?"":"none",!n)return;let i=!!t.get("playing");d.textContent=i?"❚❚ Pause":"▶ Play",d.dataset.action=i?"game-pause":"game-play",u.value=String(t.get("speed")),document.activeElement!==p&&(p.value=String(t.get("seed"))),c.checked=!!t.get("autoplay");let o=t.get("history")||[];a.replaceChildren(...o.map((e,t)=>{let n=S("li",`fx-fired fx-fired-${e.status}`,`${t+1}. ${e.label}`);return n.dataset.transition=e.transition,n.title=`firing #${e.seq}: ${e.transition} (${e.status})`,n})),a.style.display=o.length?"":"none",a.scrollLeft=a.scrollWidth}for(let e of(c.type="checkbox",c.addEventListener("change",()=>l("autoplay",c.checked)),f.title="Run plays the net by itself (automatic transitions fire at once) instead of a game by hand",f.append(c," auto-play"),i.append(f,S("span","fx-game-legend","⚡ can fire")),["history","playing","speed","seed","autoplay","graph"]))t.on(`change:${e}`,x);x()}(c);let m=function(e){let{cy:t,model:n}=e;function r(t,n,r,i,a){let o=e.theme(),s=void 0!==i.tokens?i.tokens:r,l="place"!==n&&i.attempts>1?`${t} \xd7${i.attempts}`:t,d=i.state&&o.states[i.state];d&&(l=`${d.icon} ${l}`),a&&(l=`⚡ ${l}`);let u={label:l,tokens:s||0,baseTokens:r||0};return"place"===n&&(u.tokenImage=function(e,t){let n=[];if(e<=5){let r=[[22,22],[14,14],[30,30],[30,14],[14,30]];for(let i of 1===e?[0]:2===e?[1,2]:3===e?[0,1,2]:4===e?[1,2,3,4]:[0,1,2,3,4])n.push(`<circle cx='${r[i][0]}' cy='${r[i][1]}' r='4' fill='${t}'/>`)}else n.push(`<text x='22' y='27' font-size='14' text-anchor='middle' font-family='sans-serif' fill='${t}'>${e}</text>`);return"data:image/svg+xml;utf8,"+encodeURIComponent(`<svg xmlns='http://www.w3.org/2000/svg' width='44' height='44'>${n.join("")}</svg>`)}(s||0,o.text)),d&&(u.state=i.state),u}let i={},a=0;function o(){a=0;let e=n.get("status")||{};t.batch(()=>{for(let n of new Set([...Object.keys(e),...Object.keys(i)])){let a=e[n]||{},o=i[n]||{};if(a.state===o.state&&a.attempts===o.attempts&&a.tokens===o.tokens)continue;let s=t.getElementById(n);s.empty()||(s.removeData("state"),s.data(r(s.data("name"),s.data("kind"),s.data("baseTokens"),a,s.hasClass("enabled"))))}}),i=e}return{draw:function(){let a=n.get("graph")||{nodes:[],edges:[]},o=n.get("status")||{},s=n.get("issues")||{},l=new Set(n.get("enabled")||[]),d=new Set([...a.nodes.map(e=>e.id),...a.edges.map(e=>e.id)]),u=[];if(i=o,t.batch(()=>{for(let e of(t.elements().forEach(e=>{d.has(e.id())||e.hasClass("eh-preview")||e.hasClass("eh-ghost")||e.remove()}),a.nodes)){let n=e.label||e.id,i={id:e.id,kind:e.kind,name:n,...r(n,e.kind,e.tokens,o[e.id]||{},l.has(e.id))},a=t.getElementById(e.id);if(a.empty())a=t.add({group:"nodes",data:i,position:{x:e.x,y:e.y}}),u.push(a);else{a.removeData("state"),a.data(i);let t=a.position();a.grabbed()||t.x===e.x&&t.y===e.y||(a.position({x:e.x,y:e.y}),u.push(a))}a.toggleClass("issue",!!s[e.id]),a.toggleClass("enabled",l.has(e.id))}for(let e of a.edges){let n=(e.props||{}).weight,r={id:e.id,source:e.source,target:e.target,inhibitor:!!(e.props||{}).inhibitor};n&&1!==n&&(r.label=String(n));let i=t.getElementById(e.id);i.empty()?t.add({group:"edges",data:r}):(i.removeData("label"),i.data(r)),t.getElementById(e.id).toggleClass("issue",!!s[e.id])}}),u.length&&t.width()>0){let e=(e,n=t.extent())=>e.x1<n.x1||e.y1<n.y1||e.x2>n.x2||e.y2>n.y2,n=u.filter(t=>e(t.boundingBox()));n.length&&(t.fit(void 0,30),e(n[0].boundingBox())&&t.center(n[0]))}let p=n.get("selected"),f=t.$(":selected");(p?1===f.length&&f.id()===p:f.empty()||f.length>1)||(e.syncing=!0,t.elements().unselect(),p&&t.getElementById(p).select(),e.syncing=!1)},statusChanged(){a||(a=requestAnimationFrame(o))},destroy(){a&&cancelAnimationFrame(a)}}}(c),b=function(e){let{model:t,root:n,side:r,send:i}=e,a=!1,o={};function s(e,t){let n=S("label","fx-field");n.dataset.field=e;let r=S("span","fx-key",e);return t&&(r.title=t),n.append(r),n}function l(e,t,r,a){let l=o[t],u=s(t,l&&l.help),p=n=>i({type:"set",id:e,key:t,value:n}),f=void 0!==a?a:l&&null!==l.default&&void 0!==l.default?`default: ${l.default}`:"";if(l&&"choice"===l.kind){let e=S("select","fx-input fx-select");for(let n of(e.dataset.key=t,e.append(Object.assign(S("option","",f||"(not set)"),{value:""})),l.choices))e.append(Object.assign(S("option","",n),{value:n}));U(r)&&!l.choices.includes(U(r))&&e.append(Object.assign(S("option","",U(r)),{value:U(r),disabled:!0})),e.value=U(r),e.addEventListener("change",()=>p(e.value)),u.append(e)}else if(l&&"activation"===l.kind)u.append(function(e,t,r){let i=S("span","fx-activation"),a="string"==typeof t?t:t&&"object"==typeof t?Object.keys(t).find(e=>["batch","window","custom"].includes(e)):"",s=S("select","fx-input fx-select");for(let t of(s.dataset.key=e,s.append(Object.assign(S("option","","all (default)"),{value:""})),o[e].choices))("all"!==t||"all"===a)&&s.append(Object.assign(S("option","",t),{value:t}));s.value=a||"";let l=S("input","fx-input fx-activation-arg");l.dataset.key=`${e}.arg`;let d={batch:"items per run, e.g. 10",window:"interval, e.g. 2s",custom:"module:function"},u=()=>"batch"===s.value?e=>/^\s*[1-9]\d*\s*$/.test(e)?"":"batch needs a whole number ≥ 1":"window"===s.value?e=>O.test(e.replace(/ /g,""))?"":"window needs a duration like 2s":void 0,p=()=>{l.style.display=d[s.value]?"":"none",l.placeholder=d[s.value]||""};return l.defaultValue=a&&t&&"object"==typeof t?U(t[a]):"",p(),s.addEventListener("change",()=>{p(),l.value="",d[s.value]?l.focus():r(s.value)}),D(l,e=>r(`${s.value} ${e.trim()}`),n,e=>u()?u()(e):""),i.append(s,l,S("div","fx-why")),i}(t,r,p));else{let e=S("input","fx-input");e.dataset.key=t,l&&(e.dataset.help=l.help),e.placeholder=f,e.defaultValue=U(r),l&&"callable"===l.kind&&e.setAttribute("list",d.id),D(e,p,n,function(e){if(e){if("int"===e.kind)return t=>t.trim()?/^\s*-?\d+\s*$/.test(t)?null!==e.minimum&&Number(t)<e.minimum?`${e.key} must be at least ${e.minimum}`:"":`${e.key} must be a whole number`:"";if("duration"===e.kind)return t=>!t.trim()||O.test(t.replace(/ /g,""))?"":`${e.key}: a duration like 250ms, 10s, 5m, 1h, 1m30s, or seconds`}}(l)),u.append(e,S("div","fx-why"))}return l&&l.help&&u.append(S("div","fx-help",l.help)),u}e.bundle&&(o=e.bundle.get("fields")||{},e.bundle.on("change:fields",()=>{o=e.bundle.get("fields")||{},u()}));let d=S("datalist");function u(){let u,p,f=r.contains(document.activeElement)?document.activeElement:null,c=f&&{key:f.dataset.key,value:f.value,at:f.selectionStart,dirty:f.value!==f.defaultValue},x=new Set([...r.querySelectorAll("details[open]")].map(e=>e.dataset.group||e.className));r.replaceChildren(),d.replaceChildren(...(t.get("functions")||[]).map(e=>Object.assign(S("option"),{value:e.name}))),r.append(d);let h=t.get("graph")||{nodes:[],edges:[]},g=t.get("issues")||{},m=t.get("selected"),b=S("div","fx-title",`${h.name||"design"} \xb7 ${"dag"===e.mode()?"DAG":"Petri net"}`);r.append(b);let y=h.nodes.find(e=>e.id===m),v=h.edges.find(e=>e.id===m),w=t.get("schema")||{};if(y){let e=s("id"),a=S("input","fx-input fx-rename");a.dataset.key="id",a.defaultValue=y.id,D(a,e=>i({type:"rename",id:y.id,new:e.trim()}),n),e.append(a),r.append(S("div","fx-kind",y.kind),e);let d=t.get("details")||[];if(d.length&&r.append(function(e){let t=S("div","fx-attempts");for(let r of(t.append(S("div","fx-group-title","last run")),e)){var n;let e=S("div",`fx-attempt fx-attempt-${r.status}`);if(e.dataset.attempt=r.attempt,e.append(S("div","fx-attempt-head",`#${r.attempt} ${r.status} \xb7 ${null==(n=r.duration_s)?"":n<1?`${Math.round(1e3*n)} ms`:`${n.toFixed(2)} s`}`)),r.error_type&&e.append(S("div","fx-attempt-error",`${r.error_type}: ${r.error_message||""}`)),r.traceback){let t=S("details","fx-traceback");t.append(S("summary","","traceback"),S("pre","",r.traceback)),e.append(t)}void 0!==r.output&&e.append(S("pre","fx-output",r.output)),t.append(e)}return t}(d)),"step"===y.kind)r.append(...function(e,r){let a=(t.get("schema")||{})[e.kind]||[],d=new Set(r.edges.filter(t=>t.target===e.id).map(e=>e.source)),u={},p=[];for(let e of B){let t=S("details","fx-group");t.dataset.group=e,t.append(S("summary","fx-group-title",e)),u[e]=t}for(let r of a){let a=o[r],p=a?a.group:"advanced";"with"===r&&u.basics.append(...function(e,r){let a=t.get("functions")||[],o=e.props&&e.props.run||e.id,l=a.find(e=>e.name===o);if(!l)return[];let d=e.props&&e.props.with||{};return l.params.filter(e=>!r.has(e.name)).map(t=>{let r=s(`with.${t.name}`,`${l.signature}: ${t.required?"required":`default ${t.default}`}`),a=S("input","fx-input fx-param");return a.dataset.key=`with.${t.name}`,a.placeholder=t.required?"required":`default: ${t.default}`,a.defaultValue=U(d[t.name]),D(a,n=>i({type:"set",id:e.id,key:`with.${t.name}`,value:n}),n),r.append(a),r})}(e,d));let f=N(e.props,r);u[p].append(l(e.id,r,f)),null!=f&&(u[p].open=!0)}for(let e of(u.basics.open=!0,B))u[e].children.length>1&&p.push(u[e]);return p}(y,h));else for(let e of w[y.kind]||[])r.append(l(y.id,e,N(y.props,e)))}else if(v){if(r.append(S("div","fx-kind","dag"===e.mode()?"dependency":"arc"),S("div","fx-edge",`${v.source} → ${v.target}`)),"net"===e.mode())for(let e of w.arc||[])r.append(l(v.id,e,N(v.props,e)))}else r.append(S("div","fx-hint","Select a node or an arc to edit it. Drag from a node's blue handle to connect; Delete removes; Ctrl+Z undoes."));let k=g[m]||[],$=Object.entries(g);if(k.length||!m&&$.length){let e=S("div","fx-issues");for(let[t,n]of m?k.map(e=>[m,e]):$.flatMap(([e,t])=>t.map(t=>[e,t])))e.append(S("div","fx-issue",t?`${t}: ${n}`:n));r.append(e)}for(let o of(a&&r.append(...((u=S("textarea","fx-yaml-text")).dataset.key="yaml",u.defaultValue=t.get("yaml_text"),u.spellcheck=!1,u.title="Ctrl+Enter applies, Escape puts back the design's YAML",(p=S("button","fx-btn fx-apply","Apply YAML")).addEventListener("click",()=>i({type:"yaml",text:u.value})),u.addEventListener("keydown",e=>{"Enter"===e.key&&(e.ctrlKey||e.metaKey)?(e.preventDefault(),i({type:"yaml",text:u.value})):"Escape"===e.key&&(e.preventDefault(),u.value=u.defaultValue,n.focus())}),[u,p])),r.append(function(e){let t=S("div","fx-legend");for(let[n,r]of(t.title="run states",Object.entries(e.states))){let e=S("span","fx-legend-item");e.dataset.state=n;let i=S("span","fx-swatch",r.icon);i.style.background=r.fill,i.style.color=r.text,i.style.borderColor=r.border,i.style.borderStyle=r.borderStyle,e.append(i,S("span","",n)),t.append(e)}return t}(e.theme())),r.querySelectorAll("details")))x.has(o.dataset.group||o.className)&&(o.open=!0);if(c&&c.key){let e=r.querySelector(`[data-key="${CSS.escape(c.key)}"]`);e&&(c.dirty&&(e.value=c.value),e.focus(),null!==c.at&&void 0!==c.at&&e.setSelectionRange&&e.setSelectionRange(c.at,c.at))}}return d.id=`fx-fns-${Math.random().toString(36).slice(2)}`,{draw:u,toggleYaml(){a=!a,u()}}}(c);!function(e){let{cy:t,root:n,body:r,canvas:i,send:a}=e,o=null;i.addEventListener("mousemove",e=>{let n=i.getBoundingClientRect(),r=t.pan(),a=t.zoom();o={x:(e.clientX-n.left-r.x)/a,y:(e.clientY-n.top-r.y)/a}}),i.addEventListener("mouseleave",()=>{o=null});let s=null;n.addEventListener("keydown",n=>{let r=n.ctrlKey||n.metaKey,i="INPUT"===n.target.tagName||"TEXTAREA"===n.target.tagName;if(r&&"s"===n.key.toLowerCase()||!i&&"Enter"===n.key&&(n.shiftKey||r)||(n.stopPropagation(),i))return;let l=q[n.key];if("Delete"===n.key||"Backspace"===n.key)e.deleteSelection();else if(r&&"z"===n.key)a({type:"undo"});else if(r&&("y"===n.key||n.shiftKey&&"Z"===n.key))a({type:"redo"});else if(r&&"c"===n.key)a({type:"copy",ids:e.selection()});else if(r&&"v"===n.key)a({type:"paste",...o||{}});else if(r&&"a"===n.key)t.elements().select();else if("Escape"===n.key)e.cancel(),t.elements().unselect();else if(l&&!r){var d,u;let e;d=10*l[0]*(n.shiftKey?5:1),u=10*l[1]*(n.shiftKey?5:1),(e=t.$("node:selected")).empty()?t.panBy({x:-(4*d),y:-(4*u)}):(e.forEach(e=>e.position({x:e.position("x")+d,y:e.position("y")+u})),clearTimeout(s),s=setTimeout(()=>{a({type:"move",moves:e.map(e=>({id:e.id(),x:e.position("x"),y:e.position("y")}))})},300))}else if("+"===n.key||"="===n.key)e.zoomBy(1.25);else{if("-"!==n.key)return;e.zoomBy(.8)}n.preventDefault()}),r.addEventListener("wheel",e=>{if(!i.contains(e.target)||(e.stopPropagation(),document.activeElement!==n&&document.activeElement!==i&&!e.ctrlKey&&!e.metaKey))return;e.preventDefault();let r=Math.min(2,Math.max(.5,Math.exp(-(.0015*(e.deltaY*(1===e.deltaMode?33:2===e.deltaMode?400:1)))))),a=i.getBoundingClientRect(),o=Math.min(t.maxZoom(),Math.max(t.minZoom(),t.zoom()*r));t.zoom({level:o,renderedPosition:{x:e.clientX-a.left,y:e.clientY-a.top}})},{capture:!0,passive:!1})}(c);let y=function(e){let{cy:t,model:n,canvas:r,handle:i,tooltip:a,menu:o,send:s}=e,l=t.edgehandles({canConnect:(e,t)=>!e.same(t),edgeParams:()=>({data:{}}),hoverDelay:60,snap:!0,snapThreshold:30,noEdgeEventsInDraw:!0,disableBrowserGestures:!0}),d=null,u=!1;function p(e){d=e;let t=e.renderedBoundingBox({includeLabels:!1});i.style.left=`${t.x2+3}px`,i.style.top=`${(t.y1+t.y2)/2-6}px`,i.style.display="block"}t.on("mouseover","node",e=>{u||e.target.hasClass("eh-ghost-node")||p(e.target);let t=(n.get("issues")||{})[e.target.id()];if(t&&t.length){let n=e.target.renderedPosition();a.textContent=t.join("\n"),a.style.left=`${n.x+20}px`,a.style.top=`${n.y+20}px`,a.style.display="block"}}),t.on("mouseout","node",()=>{a.style.display="none"}),t.on("pan zoom drag position",()=>{d&&!u&&p(d)}),i.addEventListener("mousedown",e=>{d&&(e.preventDefault(),e.stopPropagation(),u=!0,i.style.display="none",l.start(d))});let f=e=>{if(!u)return;let n=r.getBoundingClientRect(),i=t.pan(),a=t.zoom();l.update({x:(e.clientX-n.left-i.x)/a,y:(e.clientY-n.top-i.y)/a})},c=()=>{u&&(u=!1,l.snap(),l.stop())};return window.addEventListener("mousemove",f),window.addEventListener("mouseup",c),t.on("ehcomplete",(e,t,n,r)=>{r.remove(),s({type:"connect",source:t.id(),target:n.id()})}),t.on("cxttap",n=>{let r=n.target;o.replaceChildren();let i=(e,t)=>{let n=S("div","fx-menu-item",e);n.addEventListener("click",()=>{o.style.display="none",t()}),o.append(n)};r===t?i("Paste here",()=>s({type:"paste",x:n.position.x,y:n.position.y})):r.selected()||(t.elements().unselect(),r.select()),r!==t&&i("Delete",()=>e.deleteSelection()),r!==t&&r.isNode()&&(i("Rename…",()=>{let e=window.prompt("New id",r.id());e&&e!==r.id()&&s({type:"rename",id:r.id(),new:e})}),i("Copy",()=>s({type:"copy",ids:e.selection()})));let a=n.renderedPosition;o.style.left=`${a.x}px`,o.style.top=`${a.y}px`,o.style.display="block"}),t.on("tap",()=>{o.style.display="none"}),{cancel(){u&&(u=!1,l.stop()),o.style.display="none"},draw(){a.style.display="none",d&&d.removed()&&(i.style.display="none",d=null)},destroy(){window.removeEventListener("mouseup",c),window.removeEventListener("mousemove",f),l.destroy()}}}(c);function v(){m.draw(),y.draw(),x.draw(),g.draw(),b.draw()}c.drawSide=b.draw,f.on("dragfree","node",e=>{let t=e.target.selected()?f.$("node:selected"):e.target;c.send({type:"move",moves:t.map(e=>({id:e.id(),x:e.position("x"),y:e.position("y")}))})}),f.on("select unselect",()=>{if(c.syncing)return;let t=c.selection(),n=1===t.length?t[0]:"";n!==e.get("selected")&&(e.set("selected",n),e.save_changes())}),f.on("tap","node[kind = 'transition']",t=>{(e.get("enabled")||[]).includes(t.target.id())&&c.send({type:"fire",id:t.target.id()})}),o.addEventListener("mousedown",e=>{w.el.contains(e.target)||t.focus()});let w=function(e,t,n){let r=document.createElement("canvas");r.className="fx-minimap",r.width=160*devicePixelRatio,r.height=100*devicePixelRatio,r.style.width="160px",r.style.height="100px",r.title="minimap: click or drag to move the view",t.append(r);let i=r.getContext("2d"),a=0,o=null;function s(){a=0;let t=e.nodes().filter(e=>!e.hasClass("eh-ghost-node")),s=t.boundingBox({includeLabels:!1}),l=e.extent(),d=t.nonempty()&&(s.x1<l.x1||s.y1<l.y1||s.x2>l.x2||s.y2>l.y2);if(r.style.display=d?"block":"none",!d)return;let u=n(),p=Math.min(s.x1,l.x1),f=Math.min(s.y1,l.y1),c=Math.max(s.x2,l.x2)-p,x=Math.max(s.y2,l.y2)-f,h=Math.min(152/c,92/x),g=(160-c*h)/2-p*h,m=(100-x*h)/2-f*h;o={k:h,ox:g,oy:m},i.setTransform(devicePixelRatio,0,0,devicePixelRatio,0,0),i.fillStyle=u.node,i.fillRect(0,0,160,100),i.fillStyle=u.muted,t.forEach(e=>{let t=e.boundingBox({includeLabels:!1});i.fillRect(g+t.x1*h,m+t.y1*h,Math.max(2,t.w*h),Math.max(2,t.h*h))}),i.strokeStyle=u.brand,i.lineWidth=1.5,i.strokeRect(g+l.x1*h,m+l.y1*h,l.w*h,l.h*h)}let l=()=>{a||(a=requestAnimationFrame(s))};function d(t){if(!o)return;let n=r.getBoundingClientRect(),i=(t.clientX-n.left-o.ox)/o.k,a=(t.clientY-n.top-o.oy)/o.k,s=e.zoom();e.pan({x:e.width()/2-i*s,y:e.height()/2-a*s})}e.on("pan zoom resize add remove position",l);let u=!1,p=e=>u&&d(e),f=()=>{u=!1};return r.addEventListener("mousedown",e=>{e.preventDefault(),e.stopPropagation(),u=!0,d(e)}),window.addEventListener("mousemove",p),window.addEventListener("mouseup",f),l(),{el:r,draw:l,destroy(){window.removeEventListener("mousemove",p),window.removeEventListener("mouseup",f),a&&cancelAnimationFrame(a)}}}(f,o,()=>r),k=()=>{let e=P(t);JSON.stringify(e)!==JSON.stringify(r)&&(r=e,f.style(L(r)),v(),w.draw())},$=new MutationObserver(()=>[0,250,1e3].forEach(e=>setTimeout(k,e)));$.observe(document.body,{attributes:!0,attributeFilter:["data-jp-theme-light","data-jp-theme-name"]});let E=0,C=()=>{E||(E=requestAnimationFrame(()=>{E=0,f.resize()}))};document.addEventListener("scroll",C,!0),o.addEventListener("mouseenter",()=>f.resize());let A=()=>{let t=e.get("message");l.textContent=t,l.style.display=t?"block":"none"};for(let t of(e.on("change:status",m.statusChanged),["graph","issues","enabled","selected","can_undo","can_redo"]))e.on(`change:${t}`,v);return e.on("change:yaml_text",b.draw),e.on("change:details",b.draw),e.on("change:functions",()=>{g.draw(),b.draw()}),e.on("msg:custom",e=>{if("select"===e.type)for(let t of(f.elements().unselect(),e.ids))f.getElementById(t).select()}),e.on("change:message",A),v(),A(),requestAnimationFrame(()=>{f.resize(),f.fit(void 0,30)}),()=>{document.removeEventListener("scroll",C,!0),$.disconnect(),m.destroy(),g.destroy(),w.destroy(),y.destroy(),f.destroy()}};var K=n(901),Z=n(904);let H=Z.ServerConnection.makeSettings(),G=e=>`${K.URLExt.join(H.baseUrl,"fluxnb/api/v1")}/${e}`;class Q extends Error{constructor(e,t,n,r=[]){super(n),this.status=e,this.kind=t,this.problems=r}}async function ee(e,{method:t="GET",body:n,as:r="json"}={}){let i,a={method:t};void 0!==n&&(a.body=JSON.stringify(n),a.headers={"Content-Type":"application/json"});try{i=await Z.ServerConnection.makeRequest(G(e),a,H)}catch(e){throw new Q(0,"NetworkError",`the server cannot be reached: ${e.message||e}`)}if(204===i.status)return null;let o=await i.text(),s=null;if("json"===r||!i.ok)try{s=o?JSON.parse(o):null}catch{s=null}if(!i.ok){let e=s&&s.error||{},t=404!==i.status||e.kind?"":" (is fluxnb's server extension enabled? pip install 'fluxnb[lab]')";throw new Q(i.status,e.kind||"HTTPError",(e.message||`${i.status} ${i.statusText}`)+t,e.problems||[])}return"json"===r?s:o}function et(e){let t=(e.problems||[]).slice(0,5).map(e=>(e.line?`line ${e.line}${e.column?`:${e.column}`:""} `:"")+(e.message||e.kind));return t.length&&!String(e.message).includes(t[0])?`${e.message}
${t.join("\n")}`:String(e.message)}let en=["run.started","step.status","run.finished","run.rejected","breaker.changed","net.created","net.firing","firing","trigger_error"],er=new Set,ei=null;function ea(e){if(er.add(e),!ei){let e=G("stream");for(let t of(H.token&&(e+=`?token=${encodeURIComponent(H.token)}`),ei=new EventSource(e,{withCredentials:!0}),en))ei.addEventListener(t,e=>{let t;try{t=JSON.parse(e.data)}catch{return}for(let e of[...er])e(t)})}return()=>{er.delete(e),!er.size&&ei&&(ei.close(),ei=null)}}let eo="fluxnb Designer",es=new Set(["functions","add_function","fire","game"]),el=e=>(e.split("/").pop()||"design").replace(/\.(flux\.ya?ml|pnml|ya?ml)$/i,"").replace(/[^A-Za-z0-9_.-]+/g,"_")||"design";class ed extends C.Widget{constructor(e,t){super(),this.addClass("fluxnb-lab-editor"),this.context=e,this.commands=t,this.node.tabIndex=-1,this.queue=Promise.resolve(),this.writing=!1,this.runId=null,this.unsubscribe=null,e.ready.then(()=>this.start())}get format(){return this.context.path.toLowerCase().endsWith(".pnml")?"pnml":"yaml"}async start(){let e;try{e=await this.openSession()}catch(e){this.showError(e);return}this.serverText=e.text,this.model=function({send:e,onSet:t=()=>{},state:n={}}){let r,i={height:460,...n},a=(r=new Map,{on(e,t){r.has(e)||r.set(e,new Set),r.get(e).add(t)},off(e,t){r.get(e)?.delete(t)},emit(e,...t){for(let n of r.get(e)||[])n(...t)}}),o=(e,t)=>e===t||JSON.stringify(e)===JSON.stringify(t);return{get:e=>i[e],set(e,n){o(i[e],n)||(i[e]=n,t(e,n),a.emit(`change:${e}`))},save_changes(){},on:a.on,off:a.off,send:t=>e(t),update(e){let t=Object.keys(e).filter(t=>!o(i[t],e[t]));for(let n of t)i[n]=e[n];for(let e of t)a.emit(`change:${e}`)},message:e=>a.emit("msg:custom",e)}}({send:e=>this.send(e),onSet:(e,t)=>{"selected"===e&&this.send({type:"select",id:t})},state:e.state}),this.host=document.createElement("div"),this.node.replaceChildren(this.host),this.cleanup=function(e,t,n={}){return X({model:t,el:e,bundle:{get:e=>"fields"===e?n:void 0,on(){}}})}(this.host,this.model,e.fields),this.fitView(),this.context.model.contentChanged.connect(this.textChanged,this),this.ready=!0}async openSession(){let e=await ee("designs",{method:"POST",body:{text:this.context.model.toString(),format:this.format,name:el(this.context.path)}});return this.sid=e.id,e}showError(e){let t=document.createElement("div");t.className="fluxnb-lab-error";let n=document.createElement("h3");n.textContent=`Cannot draw ${this.context.path}`;let r=document.createElement("pre");r.textContent=e instanceof Q?et(e):String(e);let i=document.createElement("button");i.className="jp-Button jp-mod-styled jp-mod-accept",i.textContent="Open as text",i.addEventListener("click",()=>this.commands.execute("docmanager:open",{path:this.context.path,factory:"Editor"})),t.append(n,r,i),this.node.replaceChildren(t)}send(e){if("run"===e.type)return void this.run();if(es.has(e.type)){"functions"!==e.type&&this.say("that runs in a notebook's kernel: use fluxnb.Designer there");return}this.queue=this.queue.then(()=>this.post(e))}async post(e,t=!0){try{this.take(await ee(`designs/${this.sid}`,{method:"POST",body:e}))}catch(n){if(t&&n instanceof Q&&404===n.status){try{await this.reopen(),await this.post(e,!1),this.say("the design session was reopened from the file (undo starts over)")}catch(e){this.say(et(e))}return}this.say(n instanceof Q?et(n):String(n))}}async reopen(){let e=await this.openSession();this.serverText=e.text,this.take(e)}take(e){for(let t of(this.model.update(e.state),e.messages||[]))this.model.message(t);if(null!=e.text&&e.text!==this.serverText&&(this.serverText=e.text,e.text!==this.context.model.toString())){this.writing=!0;try{let t=this.context.model.sharedModel;t.updateSource(0,t.getSource().length,e.text),this.context.model.dirty=!0}finally{this.writing=!1}}}textChanged(){!this.writing&&this.ready&&(clearTimeout(this.reread),this.reread=setTimeout(()=>{this.context.model.toString()!==this.serverText&&(this.queue=this.queue.then(()=>this.reopen().catch(e=>this.say(et(e)))))},200))}say(e){this.model&&this.model.update({message:e})}name(){return(this.model.get("graph")||{}).name||el(this.context.path)}async validate(){if(this.model){await this.queue;try{let e=await ee(`workflows/${encodeURIComponent(this.name())}/validate`,{method:"POST",body:{manifest:this.model.get("yaml_text")}});return this.say(`✓ ${e.kind} '${e.name}' is valid: the control plane can run it`),!0}catch(e){return this.say(`✗ ${et(e)}`),!1}}}async run(){if(!this.model)return;await this.queue;let e=this.name(),t=this.model.get("graph")||{nodes:[]};try{for(let n of(this.say(`registering ${e}…`),await ee(`workflows/${encodeURIComponent(e)}`,{method:"PUT",body:{manifest:this.model.get("yaml_text")}}),this.status={},t.nodes))"place"!==n.kind&&(this.status[n.id]={state:"pending",attempts:0});this.unsubscribe||(this.unsubscribe=ea(e=>this.heard(e)));let n=await ee(`workflows/${encodeURIComponent(e)}/runs`,{method:"POST",body:{}});for(let e of(this.runId=n.run_id,this.node.dataset.runId=this.runId,this.model.update({status:{...this.status}}),this.say(`run ${this.runId}: ${n.status} (see it in the Runs panel)`),this.early||[]))this.heard(e);this.early=[]}catch(t){this.say(`cannot run ${e}: ${et(t)}`)}}heard(e){if(e.run_id){if(!this.runId)return void(this.early||=[]).push(e);if(e.run_id===this.runId)if("step.status"===e.type){let t=this.status[e.step]||{};this.status[e.step]={state:e.status,attempts:Math.max(e.attempt||0,t.attempts||0)},this.model.update({status:{...this.status}})}else"run.started"===e.type?this.say(`run ${this.runId}: running`):("run.finished"===e.type||"run.rejected"===e.type)&&(this.say(`run ${this.runId}: ${e.status||e.type}`),this.node.dataset.runStatus=e.status||"rejected")}}onResize(){this.fitView()}onAfterShow(){this.fitView()}fitView(){let e=this.host&&this.host.fluxnb&&this.host.fluxnb.cy;e&&requestAnimationFrame(()=>{e.resize(),!this.fitted&&e.width()>0&&e.height()>0&&(this.fitted=!0,e.fit(void 0,30))})}dispose(){this.isDisposed||(this.unsubscribe&&this.unsubscribe(),this.cleanup&&this.cleanup(),this.sid&&ee(`designs/${this.sid}`,{method:"DELETE"}).catch(()=>{}),super.dispose())}}class eu extends E.ABCWidgetFactory{constructor(e,t){super(e),this.commands=t}createNewWidget(e){let t=new ed(e,this.commands),n=new E.DocumentWidget({content:t,context:e});return n.addClass("fluxnb-lab-document"),n.toolbar.addItem("fluxnb-validate",new i.ToolbarButton({label:"Validate",tooltip:"check the workflow as the control plane would run it (callables by import)",className:"fluxnb-lab-validate",onClick:()=>void t.validate()})),n.toolbar.addItem("fluxnb-run",new i.ToolbarButton({label:"Run",tooltip:"register this workflow and run it through the control plane",className:"fluxnb-lab-run",onClick:()=>void t.run()})),n}}let ep=["","queued","running","succeeded","failed","cancelled","interrupted"],ef=new Set(["operator","admin"]),ec=new Set(["queued","running","cancelling"]),ex=(e,t,n)=>{let r=document.createElement(e);return t&&(r.className=t),void 0!==n&&(r.textContent=n),r};function eh(e,t,n){let r,i=ex("label","fluxnb-runs-filter");if(i.append(ex("span","",e)),n)for(let e of(r=ex("select","jp-mod-styled"),n))r.append(Object.assign(ex("option","",e||"any"),{value:e}));else(r=ex("input","jp-mod-styled")).placeholder="any";return r.name=t,r.setAttribute("aria-label",`filter by ${t}`),i.append(r),[i,r]}class eg extends C.Widget{constructor(e){super(),this.shell=e,this.timelines=new Map,this.id="fluxnb-runs",this.addClass("fluxnb-runs"),this.title.caption="fluxnb runs",this.selected=null,this.role=null;let t=ex("div","fluxnb-runs-head");t.append(ex("h2","","Runs"));let n=ex("button","jp-Button jp-mod-minimal fluxnb-runs-refresh","⟳");n.title="refresh",n.setAttribute("aria-label","refresh the runs"),n.addEventListener("click",()=>this.refresh()),t.append(n);let r=ex("div","fluxnb-runs-filters"),[i,a]=eh("workflow","workflow"),[o,s]=eh("status","status",ep),[l,d]=eh("tenant","tenant");for(let e of(r.append(i,o,l),this.filters={workflow:a,status:s,tenant:d},Object.values(this.filters)))e.addEventListener("change",()=>this.refresh());this.who=ex("div","fluxnb-runs-who"),this.list=ex("ul","fluxnb-runs-list"),this.list.setAttribute("role","listbox"),this.list.setAttribute("aria-label","recent runs"),this.detail=ex("div","fluxnb-runs-detail"),this.error=ex("div","fluxnb-runs-error"),this.triggers=ex("div","fluxnb-triggers"),this.node.append(t,this.who,r,this.error,this.list,this.detail,this.triggers)}onAfterShow(){this.unsubscribe||(this.unsubscribe=ea(e=>this.heard(e))),this.role||this.whoami(),this.refresh()}onAfterHide(){this.stopListening()}stopListening(){this.unsubscribe&&this.unsubscribe(),this.unsubscribe=null}dispose(){this.stopListening(),super.dispose()}async whoami(){try{let e=await ee("whoami");this.role=e.role,this.who.textContent=`${e.user} \xb7 ${e.role} \xb7 ${(e.namespaces||[e.namespace]).join(", ")}`,this.node.dataset.role=e.role}catch(e){this.role="none",this.who.textContent=et(e)}}heard(e){("firing"===e.type||"trigger_error"===e.type)&&this.refreshTriggers(),e.run_id&&(e.run_id===this.selected&&(this.selectedHeard=!0),clearTimeout(this.soon),this.soon=setTimeout(()=>{this.refresh(),this.selectedHeard&&this.selected&&this.showRun(this.selected),this.selectedHeard=!1},300))}async refresh(){let e=new URLSearchParams({limit:"50"});for(let[t,n]of Object.entries(this.filters))n.value.trim()&&e.set(t,n.value.trim());let t=this.runsAsked=(this.runsAsked||0)+1;try{let{runs:n}=await ee(`runs?${e}`);if(t!==this.runsAsked)return;this.error.textContent="",this.draw(n),this.refreshTriggers()}catch(e){this.error.textContent=et(e)}}draw(e){let t=document.activeElement,n=this.list.contains(t)?t.dataset.runId:null;for(let t of(this.list.replaceChildren(),e.length||this.list.append(ex("li","fluxnb-runs-empty","no runs yet")),e)){let e=ex("li",`fluxnb-run fluxnb-status-${t.status}`);e.dataset.runId=t.run_id,e.tabIndex=0,e.setAttribute("role","option"),e.setAttribute("aria-selected",String(t.run_id===this.selected)),e.append(ex("span","fluxnb-run-status",t.status),ex("span","fluxnb-run-workflow",t.workflow),ex("span","fluxnb-run-when",(t.started_at||"").replace("T"," ").slice(0,19))),e.title=`${t.run_id} \xb7 ${t.namespace||"default"}${t.tenant?` \xb7 ${t.tenant}`:""}`;let r=()=>void this.showRun(t.run_id);e.addEventListener("click",r),e.addEventListener("keydown",t=>{"Enter"===t.key||" "===t.key?(t.preventDefault(),r()):("ArrowDown"===t.key||"ArrowUp"===t.key)&&(t.preventDefault(),("ArrowDown"===t.key?e.nextElementSibling:e.previousElementSibling)?.focus())}),this.list.append(e),t.run_id===n&&e.focus()}}async showRun(e){let t;for(let t of(this.selected=e,this.list.children))t.setAttribute("aria-selected",String(t.dataset.runId===e));let n=this.runAsked=(this.runAsked||0)+1;try{t=await ee(`runs/${encodeURIComponent(e)}`)}catch(e){n===this.runAsked&&this.detail.replaceChildren(ex("div","fluxnb-runs-error",et(e)));return}if(n!==this.runAsked)return;let r=ex("div","fluxnb-run-detail");r.dataset.runId=e,r.append(ex("h3","",`${t.workflow} \xb7 ${t.status}`),ex("div","fluxnb-run-id",t.run_id)),t.error&&r.append(ex("pre","fluxnb-run-error",t.error));let i=ex("div","fluxnb-run-actions");ef.has(this.role)&&(ec.has(t.status)?i.append(this.action("cancel","Cancel",e)):(i.append(this.action("replay","Replay",e)),"succeeded"!==t.status&&i.append(this.action("resume","Resume",e)))),r.append(i);let a=ex("table","fluxnb-run-steps"),o=ex("tr");for(let e of["step","status","tries","s"])o.append(ex("th","",e));for(let e of(a.append(o),t.steps||[])){let t=ex("tr",`fluxnb-status-${e.status}`);if(t.append(ex("td","",e.step),ex("td","",e.status),ex("td","",String(e.attempts??"")),ex("td","",null==e.duration_s?"":e.duration_s.toFixed(3))),a.append(t),e.error_message){let t=ex("tr","fluxnb-run-step-error"),n=ex("td","",`${e.error_type||"error"}: ${e.error_message}`);n.colSpan=4,t.append(n),a.append(t)}}r.append(a);let s=ex("div","fluxnb-run-timeline");r.append(s),this.detail.replaceChildren(r),ec.has(t.status)||this.timeline(e,s)}async timeline(e,t){try{let n=await ee(`runs/${encodeURIComponent(e)}/timeline.svg`,{as:"text"}),r=ex("img","fluxnb-run-timeline-img");r.alt=`timeline of run ${e}`,r.src=URL.createObjectURL(new Blob([n],{type:"image/svg+xml"})),r.tabIndex=0,r.title="open the timeline in a tab";let i=()=>this.openTimeline(e,n);r.addEventListener("click",i),r.addEventListener("keydown",e=>"Enter"===e.key&&i()),t.replaceChildren(r)}catch(e){t.textContent=et(e)}}async refreshTriggers(){let e,t=this.triggersAsked=(this.triggersAsked||0)+1;try{if({triggers:e}=await ee("triggers"),t!==this.triggersAsked)return}catch(e){this.triggers.replaceChildren(ex("div","fluxnb-runs-error",et(e)));return}let n=ex("h2","","Triggers"),r=ex("ul","fluxnb-trigger-list");for(let t of(e.length||r.append(ex("li","fluxnb-runs-empty","no triggers")),e)){let e=ex("li","fluxnb-trigger");e.dataset.triggerId=t.id;let n=t.paused?"paused":t.next_fire?`next ${t.next_fire.replace("T"," ").slice(0,16)}`:t.kind;e.append(ex("span","fluxnb-trigger-id",`${t.id} → ${t.workflow}`),ex("span","fluxnb-trigger-when",n));let i=t.last_outcome?`last: ${t.last_outcome}${t.last_fired_at?` ${t.last_fired_at.replace("T"," ").slice(0,19)}`:""}`:"never fired";if(e.append(ex("span","fluxnb-trigger-last",t.last_error?`${i} \xb7 ${t.last_error}`:i)),ef.has(this.role)){let n=ex("span","fluxnb-trigger-actions"),r=t.paused?"resume":"pause";n.append(this.button(`fluxnb-trigger-${r}`,t.paused?"Resume":"Pause",()=>ee(`triggers/${encodeURIComponent(t.id)}/${r}`,{method:"POST",body:{}}))),n.append(this.button("fluxnb-trigger-fire","Fire now",()=>ee(`triggers/${encodeURIComponent(t.id)}/fire`,{method:"POST",body:{}}))),e.append(n)}r.append(e)}this.triggers.replaceChildren(n,r)}button(e,t,n,r=()=>void this.refreshTriggers()){let i=ex("button",`jp-Button jp-mod-styled ${e}`,t);return i.addEventListener("click",async()=>{i.disabled=!0;try{await n()}catch(e){this.error.textContent=et(e)}r()}),i}openTimeline(e,t){let n=`fluxnb-timeline-${e}`,r=this.timelines.get(n);if(r&&!r.isDisposed)this.shell.activateById(n);else{let r=new C.Widget;r.addClass("fluxnb-timeline");let a=ex("img","fluxnb-timeline-full");a.alt=`timeline of run ${e}`,a.src=URL.createObjectURL(new Blob([t],{type:"image/svg+xml"})),r.node.append(a);let o=new i.MainAreaWidget({content:r});o.id=n,o.title.label=`timeline ${e.slice(-8)}`,o.title.caption=`run ${e}`,o.title.closable=!0,o.disposed.connect(()=>URL.revokeObjectURL(a.src)),this.timelines.set(n,o),this.shell.add(o,"main"),this.shell.activateById(n)}}action(e,t,n){let r=async()=>{let r=await ee(`runs/${encodeURIComponent(n)}/${e}`,{method:"POST",body:{}});this.error.textContent=`${t}: ${r.status||"done"}${r.run_id&&r.run_id!==n?` (run ${r.run_id})`:""}`};return this.button(`fluxnb-run-${e}`,t,r,()=>{this.refresh(),this.showRun(n)})}}let em=new s.LabIcon({name:"fluxnb:workflow",svgstr:`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">
<circle cx="5" cy="12" r="3"/><circle cx="19" cy="5" r="3"/><circle cx="19" cy="19" r="3"/>
<path d="M7.6 10.6 16.4 6.4l.8 1.7-8.8 4.2zM7.6 13.4l8.8 4.2-.8 1.7-8.8-4.2z"/></g></svg>`}),eb=new s.LabIcon({name:"fluxnb:petri-net",svgstr:`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">
<circle cx="5" cy="12" r="3.2" fill="none" stroke="#616161" stroke-width="1.6"/><circle cx="5" cy="12" r="1.2"/>
<rect x="11" y="7" width="2.6" height="10"/><circle cx="19.5" cy="12" r="3.2" fill="none" stroke="#616161" stroke-width="1.6"/>
<path d="M8.2 11.2h2.8v1.6H8.2zM13.6 11.2h2.6v1.6h-2.6z"/></g></svg>`}),ey={"fluxnb:new-workflow":{label:"New workflow",caption:"a new fluxnb workflow (*.flux.yaml) in the designer",icon:em,ext:".flux.yaml",template:e=>`# A fluxnb workflow: drawn by the designer, run by the control plane.
# Steps call functions by import (run: module:function); see docs/manifest.md.
name: ${e}
pipeline:
  - step: extract
  - step: transform
    depends_on: extract
  - step: load
    depends_on: transform
`,rank:1},"fluxnb:new-petri-net":{label:"New Petri net",caption:"a new Petri net (*.pnml) in the designer",icon:eb,ext:".pnml",template:e=>`<?xml version="1.0" encoding="UTF-8"?>
<pnml xmlns="http://www.pnml.org/version-2009/grammar/pnml">
  <net id="${e}" type="http://www.pnml.org/version-2009/grammar/ptnet">
    <page id="page0">
      <place id="ready"><initialMarking><text>1</text></initialMarking></place>
      <transition id="go"/>
      <place id="done"/>
      <arc id="a1" source="ready" target="go"/>
      <arc id="a2" source="go" target="done"/>
    </page>
  </net>
</pnml>
`,rank:2}},ev={id:"fluxnb-lab:plugin",description:"fluxnb workflow files in the designer, a Runs panel, New workflow / New Petri net",autoStart:!0,optional:[i.ICommandPalette,a.ILauncher,r.ILayoutRestorer,o.IFileBrowserFactory],activate(e,t,n,r,a){let{commands:o,docRegistry:s,serviceManager:l}=e;s.addFileType({name:"fluxnb-workflow",displayName:"fluxnb workflow",extensions:[".flux.yaml",".flux.yml"],mimeTypes:["text/x-yaml"],fileFormat:"text",contentType:"file",icon:em}),s.addFileType({name:"fluxnb-pnml",displayName:"Petri net (PNML)",extensions:[".pnml"],mimeTypes:["application/xml"],fileFormat:"text",contentType:"file",icon:eb});let d=new eu({name:eo,label:"Workflow Designer",fileTypes:["fluxnb-workflow","fluxnb-pnml"],defaultFor:["fluxnb-workflow","fluxnb-pnml"],modelName:"text"},o);s.addWidgetFactory(d);let u=new i.WidgetTracker({namespace:"fluxnb-designer"});for(let[e,i]of(d.widgetCreated.connect((e,t)=>{t.context.pathChanged.connect(()=>void u.save(t)),u.add(t)}),r&&r.restore(u,{command:"docmanager:open",args:e=>({path:e.context.path,factory:eo}),name:e=>e.context.path}),Object.entries(ey)))o.addCommand(e,{label:i.label,caption:i.caption,icon:i.icon,execute:async()=>{let e=a?.tracker.currentWidget?.model.path??a?.defaultBrowser?.model.path??"",t=await l.contents.newUntitled({path:e,type:"file",ext:i.ext});return await l.contents.save(t.path,{type:"file",format:"text",content:i.template(el(t.path))}),o.execute("docmanager:open",{path:t.path,factory:eo})}}),t&&t.addItem({command:e,category:"fluxnb"}),n&&n.add({command:e,category:"fluxnb",rank:i.rank});let p=new eg(e.shell);p.title.icon=em,e.shell.add(p,"left",{rank:600}),r&&r.add(p,"fluxnb-runs"),o.addCommand("fluxnb:show-runs",{label:"Show fluxnb runs",execute:()=>e.shell.activateById(p.id)}),t&&t.addItem({command:"fluxnb:show-runs",category:"fluxnb"})}}}}]);