// The token game's bar (net mode): Step, Play/Pause with a speed, Random with a seed, Back,
// Reset, the auto-play toggle, and the firing history as a list. The game itself runs in
// Python (the kernel's net engine: guards, token data, actions); these buttons only send
// moves ({type: "game", action}) and draw what Python syncs (history, enabled, playing).
import { el } from "./dom.js";
import { ENABLED_ICON } from "./style.js";

const SPEEDS = [0.5, 1, 2, 5, 10, 20]; // firings per second

export function attachTokenGame(view) {
  const { model, send } = view;
  const bar = el("div", "fx-game");
  const controls = el("div", "fx-game-controls");
  const history = el("ol", "fx-history");
  history.title = "firings so far, oldest first (Back undoes the last)";
  bar.append(controls, history);
  view.toolbar.after(bar);

  const move = (action, more = {}) => send({ type: "game", action, ...more });
  const button = (action, label, title, onclick) => {
    const b = el("button", `fx-btn fx-game-${action}`, label);
    b.dataset.action = `game-${action}`;
    b.title = title;
    b.addEventListener("click", onclick || (() => move(action)));
    controls.append(b);
    return b;
  };
  const sync = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };

  button("step", "⇥ Step", "fire one enabled transition, chosen by the net's rule (priority, then the first declared; choice: random picks by the seed)");
  const play = button("play", "▶ Play", "fire a step at a time at the chosen speed until nothing can fire", () =>
    model.get("playing") ? move("pause") : move("play", { speed: model.get("speed") }),
  );
  const speed = el("select", "fx-speed");
  speed.title = "Play's speed (firings per second)";
  for (const s of SPEEDS) speed.append(new Option(`${s}/s`, String(s)));
  speed.addEventListener("change", () => sync("speed", Number(speed.value)));
  controls.append(speed);
  button("step_random", "⚄ Random", "fire one enabled transition chosen at random (seeded)");
  const seed = el("input", "fx-seed");
  seed.type = "number";
  seed.title = "Random's seed: the same seed, the same choices (Reset replays them)";
  seed.addEventListener("change", () => sync("seed", Math.trunc(Number(seed.value) || 0)));
  controls.append(seed);
  button("back", "⇤ Back", "undo the last firing");
  button("reset", "⟲ Reset", "start again from the initial marking");
  const auto = el("label", "fx-autoplay");
  const autoBox = el("input");
  autoBox.type = "checkbox";
  autoBox.addEventListener("change", () => sync("autoplay", autoBox.checked));
  auto.title = "Run plays the net by itself (automatic transitions fire at once) instead of a game by hand";
  auto.append(autoBox, " auto-play");
  controls.append(auto, el("span", "fx-game-legend", `${ENABLED_ICON} can fire`));

  function draw() {
    const net = view.mode() === "net";
    bar.style.display = net ? "" : "none";
    if (!net) return;
    const playing = !!model.get("playing");
    play.textContent = playing ? "❚❚ Pause" : "▶ Play";
    play.dataset.action = playing ? "game-pause" : "game-play";
    speed.value = String(model.get("speed"));
    if (document.activeElement !== seed) seed.value = String(model.get("seed"));
    autoBox.checked = !!model.get("autoplay");
    const fired = model.get("history") || [];
    history.replaceChildren(
      ...fired.map((h, i) => {
        const item = el("li", `fx-fired fx-fired-${h.status}`, `${i + 1}. ${h.label}`);
        item.dataset.transition = h.transition;
        item.title = `firing #${h.seq}: ${h.transition} (${h.status})`;
        return item;
      }),
    );
    history.style.display = fired.length ? "" : "none";
    history.scrollLeft = history.scrollWidth; // the newest firing in view
  }
  for (const name of ["history", "playing", "speed", "seed", "autoplay", "graph"]) model.on(`change:${name}`, draw);
  draw();
  return { draw };
}
