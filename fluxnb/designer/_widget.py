"""The designer widget: an anywidget whose ES module (built from ``widgets/``) draws the
design with cytoscape.js. Python holds the model; the browser sends edits as messages and
draws whatever ``graph`` Python syncs back, so every edit is validated, undoable and seen
from Python at once.
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import traitlets

from .._exceptions import FluxError, ManifestError
from .._plural import plural
from ..engine._setup import DEFAULT
from ..spec._step_fields import step_fields, transition_fields
from ..store._recorder import EVENT_COLUMNS, NO_OUTPUT
from ._game import MAX_SPEED, MIN_SPEED, TokenGame
from ._model import DAG, NET, PLACE, Design, DesignError
from ._palette import CELL_W, add_function, free_offset, free_spot, step_functions

STATIC = Path(__file__).resolve().parent.parent / "_static"
INT_KEYS = {"priority", "weight"}
BOOL_KEYS = {"external", "inhibitor"}
#: How the inspector's text is read per key (``spec/_step_fields.py``).
FIELDS = {f.key: f for f in (*transition_fields(), *step_fields())}


class _Bundle(ipywidgets.Widget):
    """The designer's view module (cytoscape included), gzipped, in one widget model that
    every designer of the kernel points at: a saved notebook carries it once, and each
    designer's own ``_esm`` is a small loader (``widgets/src/loader.js``)."""

    #: ``_static/designer.js``, gzip-compressed (the browser inflates it natively).
    code = traitlets.Bytes(b"").tag(sync=True)
    #: ``_static/designer.css``, put in the page once.
    css = traitlets.Unicode("").tag(sync=True)
    #: Each step key's kind, choices, default, group and help (``spec/_step_fields.py``),
    #: what the inspector offers: the same for every designer, so kept here once.
    fields = traitlets.Dict().tag(sync=True)


_shared: list[_Bundle] = []


def _bundle() -> _Bundle:
    """The kernel's one live bundle model (made again if it was closed)."""
    if not _shared or _shared[0].comm is None:
        code = gzip.compress((STATIC / "designer.js").read_bytes(), compresslevel=9, mtime=0)
        css = (STATIC / "designer.css").read_text(encoding="utf-8")
        fields = {k: f.as_dict() for k, f in FIELDS.items()}
        _shared[:] = [_Bundle(code=code, css=css, fields=fields)]
    return _shared[0]


def _parse_value(key: str, text: Any) -> Any:
    """A property value typed in the inspector (a string) as the manifest wants it."""
    if not isinstance(text, str):
        return text
    text = text.strip()
    if text == "":
        return None
    field = FIELDS.get(key)
    kind = field.kind if field else "int" if key in INT_KEYS else None
    if kind == "int":
        try:
            value = int(text)
        except ValueError:
            raise DesignError(f"{key} must be a whole number, found '{text}'") from None
        least = field.minimum if field else None
        if least is not None and value < least:
            raise DesignError(f"{key} must be at least {least}, found {value}")
        return value
    if kind == "duration":
        from ..spec._durations import parse_duration

        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise DesignError(f"{key}: {exc}") from None
        return seconds if _is_number(text) else text  # "2s" stays as written
    if kind == "names":
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind == "activation":
        return _activation(text)
    if key in BOOL_KEYS:
        return text.lower() in ("1", "true", "yes", "on")
    if key in ("with", "tokens") or kind == "yaml" or key.startswith("with."):
        from ..spec._located import load_yaml

        try:
            value = load_yaml(text, key)
        except ManifestError as exc:
            raise DesignError(f"{key} is not valid YAML: {exc}") from None
        if key == "with" and not isinstance(value, dict):
            raise DesignError("with must be a mapping, e.g. {threshold: 100}")
        return value
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _activation(text: str) -> Any:
    """``all``, ``any``, ``batch 4``, ``window 2s``, ``custom mod:fn`` (what the
    inspector's activation field sends) as the manifest's ``activation:`` value."""
    kind, _, arg = text.partition(" ")
    arg = arg.strip()
    if kind in ("all", "any") and not arg:
        return kind
    if kind == "batch" and arg.isdigit() and int(arg) >= 1:
        return {"batch": int(arg)}
    if kind == "window" and arg:
        return {"window": _parse_value("timeout", arg)}
    if kind == "custom" and arg:
        return {"custom": arg}
    raise DesignError(
        f"activation must be all, any, batch N, window DURATION or custom module:function, "
        f"found '{text}'"
    )


class Designer(anywidget.AnyWidget):
    """Draw a workflow: a DAG of steps, or a Petri net of places and transitions.

    >>> d = fluxnb.Designer()                        # doctest: +SKIP
    >>> d = fluxnb.Designer.from_yaml(text)          # or from_workflow(wf), from_pnml(...)
    >>> d.to_yaml(); d.workflow; d.to_pnml()         # the same manifest a %%fluxroute cell takes

    Python methods mirror the toolbar: ``add``, ``connect``, ``delete``, ``rename``, ``set``,
    ``undo``, ``redo``, ``layout``, ``run``, ``fire``.
    """

    _esm = STATIC / "loader.js"

    #: The shared model holding the view's code (see ``_Bundle``).
    bundle = traitlets.Instance(_Bundle).tag(sync=True, **ipywidgets.widget_serialization)

    #: What the browser draws: mode, name, nodes (id, kind, x, y, props, tokens), edges.
    graph = traitlets.Dict().tag(sync=True)
    #: Validation problems by node or arc id ("" for the whole design).
    issues = traitlets.Dict().tag(sync=True)
    #: Live run state by node id: {"state": ..., "attempts": n} or {"tokens": n} for places.
    status = traitlets.Dict().tag(sync=True)
    #: Transitions that can fire now (net runs).
    enabled: traitlets.List[str] = traitlets.List().tag(sync=True)
    #: Run on a net plays by itself (automatic transitions fire at once) instead of opening
    #: a token game played by hand (Step, Random, Play, Back, Reset). The toolbar's toggle.
    autoplay = traitlets.Bool(False).tag(sync=True)
    #: The token game's firings so far, oldest first: {seq, transition, label, status}.
    history: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    #: The token game is playing (Play pressed, not paused, something still enabled).
    playing = traitlets.Bool(False).tag(sync=True)
    #: Play's firings per second.
    speed = traitlets.Float(2.0).tag(sync=True)
    #: Seeds Random and ``choice: random`` of the token game (Reset starts it over).
    seed = traitlets.Int(0).tag(sync=True)
    #: The selected node or arc id ("" for none).
    selected = traitlets.Unicode("").tag(sync=True)
    #: The manifest, as YAML (shown in the side panel).
    yaml_text = traitlets.Unicode("").tag(sync=True)
    #: The last message for the user (a refused edit, a run's outcome).
    message = traitlets.Unicode("").tag(sync=True)
    can_undo = traitlets.Bool(False).tag(sync=True)
    can_redo = traitlets.Bool(False).tag(sync=True)
    #: The schema the inspector offers per kind.
    schema = traitlets.Dict().tag(sync=True)
    #: The palette: the notebook's functions a step could run (see ``step_functions``).
    functions: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    #: The selected step's attempts in the last run: status, duration, error, traceback,
    #: output preview (the inspector shows them).
    details: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    height = traitlets.Int(460).tag(sync=True)

    def __init__(
        self,
        design: Design | None = None,
        *,
        mode: str = DAG,
        name: str = "design",
        namespace: Any = None,
        store: Any = DEFAULT,
        **kwargs: Any,
    ) -> None:
        from ._model import SCHEMA

        kwargs.setdefault("bundle", _bundle())
        super().__init__(**kwargs)
        self.design = design or Design(mode, name)
        #: Where callables are looked up (validation and Run); the notebook's globals.
        self.namespace = namespace
        self.store = store
        self.run_result: Any = None
        #: The token game of the last Run of a net (None before one).
        self.game: TokenGame | None = None
        self._lock = threading.RLock()
        self.schema = {k: list(v) for k, v in SCHEMA.items()}
        #: The last run's attempts per step (what ``details`` shows of the selected one).
        self.attempts: dict[str, list[dict[str, Any]]] = {}
        self.observe(lambda _: self._show_details(), "selected")
        self.on_msg(self._on_message)
        self._sync()

    # -------------------------------------------------------------- constructors
    @classmethod
    def from_yaml(cls, text: str, **kwargs: Any) -> Designer:
        """A designer showing a manifest (YAML text or a path); ManifestError if invalid."""
        from ..spec._located import load_yaml
        from ..spec._manifest import read_source
        from ..spec._net_manifest import load_any

        body: Any = read_source(text, None)[0] if isinstance(text, (str, Path)) else text
        load_any(text)  # the manifest validator's errors, with lines and columns
        data = load_yaml(body) if isinstance(body, str) else body
        return cls(Design.from_manifest(data), **kwargs)

    @classmethod
    def from_workflow(cls, wf: Any, **kwargs: Any) -> Designer:
        """A designer showing a ``Workflow`` or a ``Net``."""
        from ..spec import Net
        from ..spec._manifest_write import workflow_to_dict
        from ..spec._net_manifest import net_manifest

        data = net_manifest(wf) if isinstance(wf, Net) else workflow_to_dict(wf)
        return cls(Design.from_manifest(data), **kwargs)

    @classmethod
    def from_pnml(cls, source: Any, **kwargs: Any) -> Designer:
        """A designer showing a PNML net (text or path): its names shown, drawn where its
        graphics put it, scaled to the canvas (laid out when it has none)."""
        return cls(Design.from_pnml(source), **kwargs)

    # -------------------------------------------------------------- exports
    @property
    def workflow(self) -> Any:
        """The design as a ``Workflow`` (DAG mode) or a ``Net`` (net mode)."""
        return self.design.workflow()

    def to_yaml(self) -> str:
        return self.design.to_yaml()

    def to_pnml(self) -> str:
        return self.design.to_pnml()

    # -------------------------------------------------------------- edits (also the toolbar's)
    def add(
        self,
        kind: str | None = None,
        id: str | None = None,
        x: float = 80,
        y: float = 80,
        **props: Any,
    ) -> str:
        kind = kind or ("step" if self.design.mode == DAG else PLACE)
        return self._edit(lambda: self.design.add(kind, id, x, y, **props))

    def connect(self, source: str, target: str, **props: Any) -> str:
        return self._edit(lambda: self.design.connect(source, target, **props))

    def delete(self, *ids: str) -> None:
        self._edit(lambda: self.design.delete(list(ids)))

    def rename(self, old: str, new: str) -> None:
        self._edit(lambda: self.design.rename(old, new))
        if self.selected == old:
            self.selected = new

    def set(self, target: str, key: str, value: Any) -> None:
        self._edit(lambda: self.design.set(target, key, _parse_value(key, value)))

    def move(self, moves: dict[str, tuple[float, float]]) -> None:
        self._edit(lambda: self.design.move(moves))

    def layout(self, moves: list[dict[str, Any]] | None = None) -> None:
        """Lay the design out left to right (one undoable edit). The toolbar's Layout
        button lays it out in the view (dagre: layers, fewer crossings, no arc hidden under
        a node) and sends where each node went as ``moves``."""
        if moves is None:
            self._edit(self.design.auto_layout)
        else:  # dagre draws arcs straight too: none may run through a node
            self.move(self.design.clear_arcs({m["id"]: (m["x"], m["y"]) for m in moves}))

    def undo(self) -> bool:
        return bool(self._edit(self.design.undo))

    def redo(self) -> bool:
        return bool(self._edit(self.design.redo))

    def copy(self, *ids: str) -> int:
        return self.design.copy(list(ids) or ([self.selected] if self.selected else []))

    def paste(self, x: float | None = None, y: float | None = None) -> list[str]:
        """Paste what ``copy`` took, centred on (x, y) when given (the pointer), else 40 px
        aside; moved to the nearest spot where no copy covers a node. The new ids, selected."""
        copied = [(n.x, n.y) for n in self.design.clipboard]
        dx, dy = 40.0, 40.0
        if copied and x is not None and y is not None:
            xs, ys = [p[0] for p in copied], [p[1] for p in copied]
            dx, dy = float(x) - (min(xs) + max(xs)) / 2, float(y) - (min(ys) + max(ys)) / 2
        dx, dy = free_offset(self.design, copied, dx, dy)
        ids: list[str] = self._edit(lambda: self.design.paste(dx, dy))
        if ids:
            self.selected = ids[0] if len(ids) == 1 else ""
            self.send({"type": "select", "ids": ids})  # the view selects them all
        return ids

    def add_function(self, name: str, x: float | None = None, y: float | None = None) -> str:
        """A step running the notebook's function ``name`` (what dragging it from the
        palette does): named after it, ``run: name``, connected from the steps its
        parameters name and to the steps that take its output, in the free spot nearest
        (x, y) or right of the selection. Returns the step's id."""
        px, py = self._spot(x, y)
        sid = self._edit(lambda: add_function(self.design, self._palette_namespace(), name, px, py))
        self.selected = sid
        return str(sid)

    def _spot(self, x: float | None, y: float | None) -> tuple[float, float]:
        """Where a new node goes: the pointer's spot, else right of the selected node,
        else right of everything; then the nearest free spot."""
        nodes = self.design.nodes
        if x is None or y is None:
            sel = nodes.get(self.selected)
            if sel is not None:
                x, y = sel.x + CELL_W, sel.y
            elif nodes:
                x, y = max(n.x for n in nodes.values()) + CELL_W, min(n.y for n in nodes.values())
            else:
                x, y = 80.0, 80.0
        return free_spot(self.design, float(x), float(y))

    def _palette_namespace(self) -> Any:
        """``namespace=``, else the kernel's globals (when IPython runs this)."""
        if self.namespace is not None:
            return self.namespace
        import sys

        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        return getattr(shell, "user_ns", None)

    def apply_yaml(self, text: str) -> None:
        """Replace the design with a manifest typed in the YAML view (one undoable edit)."""
        from ..spec._located import load_yaml
        from ..spec._net_manifest import load_any

        def replace() -> None:
            load_any(text, source="the YAML view")
            self.design.replace_with(Design.from_manifest(load_yaml(text, "the YAML view")))

        self._edit(replace)

    def check(self) -> dict[str, list[str]]:
        """Validate again now (e.g. after defining a missing function); the problems by id."""
        with self._lock:
            self._sync()
            return dict(self.issues)

    def _edit(self, fn: Any) -> Any:
        with self._lock:
            try:
                out = fn()
            except (DesignError, FluxError) as err:
                self.message = str(err)
                raise
            self.message = ""
            self._forget_finished_run()
            self._sync()
            return out

    def _forget_finished_run(self) -> None:
        """An edit after a DAG run: its colours and attempts describe another design."""
        going = self.run_result
        if self.design.mode == DAG and not (
            going is not None and callable(getattr(going, "done", None)) and not going.done()
        ):
            self.status, self.attempts, self.details = {}, {}, []

    def _sync(self) -> None:
        d = self.design
        self.graph = d.to_graph()
        self.issues = d.problems(self.namespace)
        try:
            self.yaml_text = d.to_yaml()
        except Exception as exc:  # a half-drawn design still shows; say why YAML failed
            self.yaml_text = f"# cannot write YAML yet: {exc}"
        self.can_undo, self.can_redo = bool(d.undo_stack), bool(d.redo_stack)
        if d.mode == DAG:
            self.functions = step_functions(self._palette_namespace())

    # -------------------------------------------------------------- running
    @property
    def net_run(self) -> Any:
        """The token game's ``NetRun`` (``fluxnb.interactive``), or None before Run."""
        return self.game.run if self.game is not None else None

    def run(self, namespace: Any = None, **options: Any) -> Any:
        """Run the design: nodes colour live by status. A net starts a token game played by
        hand: click an enabled transition (or ``fire(id)``), ``step()``, ``step_random()``,
        ``play()`` / ``pause()``, ``back()``, ``reset()``; with ``autoplay`` its automatic
        transitions fire by themselves at once. Returns the ``NetRun`` (a net) or the run's
        handle (a DAG)."""
        going = self.run_result
        if going is not None and callable(getattr(going, "done", None)) and not going.done():
            raise DesignError(
                f"run {going.run_id} of this design is still going: wait for it, or cancel "
                "it (d.run_result.cancel()) before running again"
            )
        if not self.design.nodes:
            raise DesignError("nothing to run yet: add a step (drag a function in, or + Step)")
        ns = namespace if namespace is not None else self.namespace
        store = options.pop("store", self.store)
        obj = self.workflow
        self.status, self.enabled = {}, []
        if self.design.mode == NET:
            import fluxnb

            if self.game is not None:
                self.game.close()
                self.game = None  # a net that cannot start leaves no closed game behind
            auto = options.pop("auto", None)  # None: the auto-play box, read at each Reset
            options.setdefault("seed", self.seed)
            self.game = TokenGame(
                lambda: fluxnb.interactive(
                    obj, ns, store=store, auto=self.autoplay if auto is None else auto, **options
                ),
                self._net_status,
                seed=options["seed"],
            )
            self.game.speed = self.speed
            self._net_status()
            return self.net_run
        from ..engine import start
        from ..engine._setup import recorder_for

        self.message = "running…"
        self.attempts, self.details = {}, []
        progress = _LiveStatus(self, recorder_for(store))
        self.status = {s: {"state": "pending", "attempts": 0} for s in obj.order()}
        handle = start(obj, ns, store=progress, **options)
        self.run_result = handle
        handle.add_done_callback(self._finished)
        return handle

    def _finished(self, handle: Any) -> None:
        try:
            result = handle.result()
        except BaseException as exc:
            self.message = f"run failed to start: {exc}"
            return
        self.run_result = result
        self.message = f"run {result.run_id}: {result.status}" + (
            f" — {result.reason}" if result.reason else ""
        )
        self._show_details()

    def _show_details(self) -> None:
        self.details = list(self.attempts.get(self.selected, []))[-5:]

    def fire(self, transition: str, data: Any = None) -> Any:
        """Fire an enabled transition of the running net (what a click on it does)."""
        return self._move(lambda g: g.fire(transition, data))

    def step(self) -> Any:
        """Fire the transition the net's choice rule picks (None: nothing can fire)."""
        return self._move(lambda g: g.step())

    def step_random(self) -> Any:
        """Fire an enabled transition chosen at random, seeded by ``seed``."""
        return self._move(lambda g: g.step_random())

    def back(self) -> str:
        """Undo the last firing of the token game; the id of what was undone."""
        return str(self._move(lambda g: g.back()))

    def reset(self) -> None:
        """Start the token game again from the initial marking (a new run)."""
        self._move(lambda g: g.reset())

    def play(self, speed: float | None = None, *, random: bool = False) -> None:
        """Step ``speed`` times a second (``random``: Random's choice) until nothing can
        fire or ``pause()``; returns at once."""
        self._move(lambda g: g.play(speed if speed is not None else self.speed, random=random))
        self.speed = self._game().speed

    def pause(self) -> None:
        self._move(lambda g: g.pause())

    @traitlets.observe("speed")
    def _speed_changed(self, change: dict[str, Any]) -> None:
        game = getattr(self, "game", None)  # set in __init__, after the traits
        if game is not None:  # Play's next firing comes at the new pace
            game.speed = min(MAX_SPEED, max(MIN_SPEED, float(change["new"])))

    @traitlets.observe("seed")
    def _seed_changed(self, change: dict[str, Any]) -> None:
        game = getattr(self, "game", None)  # set in __init__, after the traits
        if game is not None:  # Random's choices start over from the new seed
            game.reseed(int(change["new"]))

    def _game(self) -> TokenGame:
        if self.game is None:
            raise DesignError("the net is not running: press Run (or call run()) first")
        return self.game

    def _move(self, fn: Any) -> Any:
        game = self._game()
        game.error = None  # a new move: why Play stopped before is old news
        try:
            out = fn(game)
        except FluxError as err:
            self.message = str(err)
            raise
        self._net_status()
        return out

    def _net_status(self) -> None:
        game = self.game
        if game is None:
            return
        run = game.run
        names = {n.id: n.props.get("name") or n.id for n in self.design.nodes.values()}
        status: dict[str, Any] = {p: {"tokens": n} for p, n in run.marking.items()}
        history = []
        for f in run.firings:
            prev = status.get(f.transition, {"attempts": 0})
            status[f.transition] = {"state": f.status, "attempts": prev.get("attempts", 0) + 1}
            label = names.get(f.transition, f.transition)
            history.append(
                {"seq": f.seq, "transition": f.transition, "label": label, "status": f.status}
            )
        enabled = list(run.enabled())
        with self.hold_sync():
            self.status, self.history, self.enabled = status, history, enabled
            self.playing = game.playing
            fired = plural(len(history), "firing")
            if game.error:
                self.message = f"token game {run.run_id} stopped: {game.error}"
            elif enabled:
                self.message = f"token game {run.run_id}: {fired}; {len(enabled)} enabled"
            else:
                self.message = f"token game {run.run_id}: {fired}; nothing can fire ({run.status})"

    # -------------------------------------------------------------- browser messages
    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type")
        handlers = {
            "add": lambda: self.add(
                content.get("kind"), None, *self._spot(content.get("x"), content.get("y"))
            ),
            "add_function": lambda: self.add_function(
                content["name"], content.get("x"), content.get("y")
            ),
            "functions": lambda: setattr(
                self, "functions", step_functions(self._palette_namespace())
            ),
            "connect": lambda: self.connect(content["source"], content["target"]),
            "move": lambda: self.move({m["id"]: (m["x"], m["y"]) for m in content["moves"]}),
            "delete": lambda: self.delete(*content["ids"]),
            "rename": lambda: self.rename(content["id"], content["new"]),
            "set": lambda: self.set(content["id"], content["key"], content.get("value")),
            "undo": self.undo,
            "redo": self.redo,
            "layout": lambda: self.layout(content.get("moves")),
            "copy": lambda: self.copy(*content.get("ids", [])),
            "paste": lambda: self.paste(content.get("x"), content.get("y")),
            "yaml": lambda: self.apply_yaml(content["text"]),
            "run": self._run_from_view,
            "fire": lambda: self.fire(content["id"]),
            "game": lambda: self._game_message(content),
            "select": lambda: setattr(self, "selected", content.get("id") or ""),
        }
        handler = handlers.get(str(kind))
        if handler is None:
            self.message = f"unknown designer message {kind!r}"
            return
        try:
            handler()
        except (DesignError, FluxError) as err:
            self.message = str(err)
            self._sync()  # the browser drops whatever it drew for a refused edit
        except Exception as err:  # never let a browser event kill the kernel's comm
            self.message = f"{type(err).__name__}: {err}"
            self._sync()

    def _run_from_view(self) -> None:
        # the view shows "running…" at once; Python says it too, so that a refusal worded
        # as the last message was still reaches the view as a change
        self.message = "running…"
        self.run()

    def _game_message(self, content: dict[str, Any]) -> None:
        action = content.get("action")
        if action == "play":
            self.play(content.get("speed"), random=bool(content.get("random")))
        elif action in ("step", "step_random", "back", "reset", "pause"):
            getattr(self, str(action))()
        else:
            raise DesignError(f"the token game has no move {action!r}")


class _LiveStatus:
    """A recorder wrapper that colours the designer's nodes as attempts start and end.

    Status changes are coalesced: the first change of a quiet moment starts a timer, and
    everything that changed within ``FRAME`` goes to the browser as one update (a run
    sends two changes per attempt; sending each as a whole ``status`` dict cost O(steps²)
    bytes and a redraw apiece). The run's end flushes what is left at once."""

    #: Seconds changes are gathered before one update is sent (about two screen frames).
    FRAME = 0.03

    def __init__(self, widget: Designer, inner: Any) -> None:
        self.widget = widget
        self.inner = inner
        self._pending: dict[str, dict[str, Any]] = {}
        self._timer: threading.Timer | None = None
        self._plock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def location(self) -> Any:
        return self.inner.location

    def _put(self, step: str, **state: Any) -> None:
        with self._plock:
            self._pending.setdefault(step, {}).update(state)
            if self._timer is None:
                self._timer = threading.Timer(self.FRAME, self.flush_status)
                self._timer.daemon = True
                self._timer.start()

    def flush_status(self) -> None:
        """Send the gathered changes now (one ``status`` update)."""
        with self._plock:
            pending, self._pending = self._pending, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not pending:
            return
        w = self.widget
        with w._lock:
            old = w.status
            w.status = {**old, **{k: {**old.get(k, {}), **v} for k, v in pending.items()}}

    def attempt_started(self, step: str, attempt: int) -> None:
        self._put(step, state="running" if attempt <= 1 else "retrying", attempts=attempt)
        hook = getattr(self.inner, "attempt_started", None)
        if hook is not None:
            hook(step, attempt)

    def run_started(self, run: Any) -> None:
        self.inner.run_started(run)

    def event(self, row: tuple) -> None:
        self.inner.event(row)
        step, attempt, status, final = row[2], row[3], row[4], row[5]
        shown = status if final else "retrying"
        self._put(step, state=shown, attempts=max(attempt, 0))
        self._keep(step, dict(zip(EVENT_COLUMNS, row[: len(EVENT_COLUMNS)], strict=False)), row)

    def _keep(self, step: str, event: dict[str, Any], row: tuple) -> None:
        """An attempt as the inspector shows it (kept on the widget, per step)."""
        shown = {
            k: event.get(k)
            for k in ("attempt", "status", "duration_s", "error_type", "error_message", "traceback")
        }
        if len(row) > len(EVENT_COLUMNS) and row[-1] is not NO_OUTPUT:
            text = repr(row[-1])
            shown["output"] = text if len(text) <= 300 else text[:297] + "..."
        w = self.widget
        with w._lock:
            w.attempts.setdefault(step, []).append(shown)
            if step == w.selected:
                w._show_details()

    def circuit_event(self, row: tuple) -> None:
        self.inner.circuit_event(row)

    def run_finished(self, run: Any) -> None:
        self.flush_status()
        self.inner.run_finished(run)

    def flush(self) -> None:
        self.inner.flush()
