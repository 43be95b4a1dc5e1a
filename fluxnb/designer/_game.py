"""The designer's token game: a net run played by hand — Step, Random, Play/Pause, Back,
Reset — on the kernel's own net engine (``fluxnb.interactive``), so guards, token data,
priorities, inhibitors and actions behave exactly as in a real run. The widget's buttons
and Python (``d.step()``, ...) call the same methods; the view only draws what they did.

Why in Python and not in the browser: a JavaScript copy of the token game would have to
re-implement guards (the safe expression language), coloured tokens and actions, and would
drift from the engine; a firing costs one comm round trip (a few ms), which a person
stepping through a net never notices.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from .._exceptions import FluxError

#: Firings per second of Play unless told otherwise, and the bounds it is kept within.
SPEED, MIN_SPEED, MAX_SPEED = 2.0, 0.25, 50.0


class TokenGame:
    """One game: ``open_run()`` makes its net run (again on Reset); ``changed()`` is called
    after everything that moved a token (from Play's thread too)."""

    def __init__(
        self, open_run: Callable[[], Any], changed: Callable[[], None], *, seed: int = 0
    ) -> None:
        self._open = open_run
        self._changed = changed
        #: Seeds Random (and, through the run, ``choice: random``); Reset starts it over.
        self.seed = seed
        self.rng = random.Random(seed)
        self.run = open_run()
        self.speed = SPEED
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._player: threading.Thread | None = None
        self.random_play = False
        #: Why Play stopped early (a failed action, a broken guard); None otherwise.
        self.error: str | None = None

    # ------------------------------------------------------------------ moves
    def step(self) -> Any:
        """Fire the transition the net's choice rule picks; None when nothing can fire."""
        with self._lock:
            return self.run.step()

    def fire(self, transition: str, data: Any = None) -> Any:
        """Fire ``transition`` (a click on it); NotEnabled says why it cannot."""
        with self._lock:
            return self.run.fire(transition, data=data)

    def step_random(self) -> Any:
        """Fire one enabled transition chosen at random (seeded by ``seed``); None if none."""
        with self._lock:
            enabled = self.run.enabled()
            return self.run.fire(self.rng.choice(enabled)) if enabled else None

    def back(self) -> str:
        """Undo the last firing (``NetRun.back``); the id of what was undone."""
        self.pause()
        with self._lock:
            return str(self.run.back())

    def reset(self) -> None:
        """Close this run and start the game again from the initial marking (same seed)."""
        self.pause()
        with self._lock:
            self.run.close()
            self.rng = random.Random(self.seed)
            self.run = self._open()

    def reseed(self, seed: int) -> None:
        """Random's choices from now on follow ``seed`` (and Reset starts them over)."""
        with self._lock:
            self.seed = seed
            self.rng = random.Random(seed)

    # ------------------------------------------------------------------ play
    @property
    def playing(self) -> bool:
        return self._player is not None and self._player.is_alive() and not self._stop.is_set()

    def play(self, speed: float | None = None, *, random: bool = False) -> None:
        """Step ``speed`` times a second (Random's choice with ``random=True``) until
        nothing can fire or ``pause()``; returns at once."""
        if speed is not None:
            self.speed = min(MAX_SPEED, max(MIN_SPEED, float(speed)))
        self.random_play = random
        self.error = None
        if self.playing:
            return
        self._stop = stop = threading.Event()
        self._player = threading.Thread(
            target=self._play, args=(stop,), name="fluxnb-token-game", daemon=True
        )
        self._player.start()

    def _play(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(1.0 / self.speed):
                try:
                    fired = self.step_random() if self.random_play else self.step()
                except FluxError as exc:  # an action failed for good, a guard broke
                    self.error = str(exc)
                    break
                if fired is None:
                    break
                self._changed()
        finally:
            stop.set()
            self._changed()

    def pause(self) -> None:
        self._stop.set()
        player = self._player
        if player is not None and player is not threading.current_thread():
            player.join(timeout=5)

    def close(self) -> None:
        self.pause()
        with self._lock:
            self.run.close()
