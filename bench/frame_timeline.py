"""Where the UI thread's time goes between a snapshot handed over and the frame that shows it
drawn: card presented -> patron screen, and tag placed -> its row. Each frame of the loop is
cut into Kivy's own phases (the clock's wait, the scheduled callbacks, input, the triggers
before the frame, the draw, the flip), and the labels whose texture was rendered, the layout
passes and the texts set on a label more than once in a frame are counted.

    .venv/bin/python bench/frame_timeline.py card|tag [--repeat 5] [--delay 0.02] [--profile]

Prints one line per frame from the hand-over to the flip of the frame that shows it, and the
medians over the repeats. `--profile`: cProfile of the UI thread over those frames as well.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import statistics
import sys
import time
from collections import Counter
from typing import Any

from _kiosk_harness import KioskRun, add_items, headless_env, one_core_if_asked, wait_until

PHASES = ("wait", "callbacks", "input", "before-frame", "draw", "flip")


class Frames:
    """The loop's frames, each cut into its phases, with what the triggers did in it."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.textures: Counter[str] = Counter()
        self.layouts = 0
        self.layout_kinds: Counter[str] = Counter()
        self.filled = 0
        self.texts_set: Counter[int] = Counter()
        self.marks: list[tuple[float, str]] = []
        self.profile: cProfile.Profile | None = None

    def instrument(self) -> None:
        from kivy.core.text import LabelBase
        from kivy.uix.label import Label
        from kivy.uix.layout import Layout

        frames = self
        refresh = LabelBase.refresh
        fill = LabelBase._texture_fill
        do_layout = Layout.do_layout

        @functools.wraps(refresh)
        def counted_refresh(label: Any) -> Any:
            frames.textures[str(label.text)[:24]] += 1
            return refresh(label)

        @functools.wraps(fill)
        def counted_fill(label: Any, texture: Any) -> Any:
            frames.filled += 1
            return fill(label, texture)

        @functools.wraps(do_layout)
        def counted_layout(layout: Any, *args: Any, **kwargs: Any) -> Any:
            frames.layouts += 1
            frames.layout_kinds[type(layout).__name__] += 1
            return do_layout(layout, *args, **kwargs)

        def text_set(label: Any, _value: Any) -> None:
            frames.texts_set[id(label)] += 1

        LabelBase.refresh = counted_refresh  # type: ignore[method-assign]
        LabelBase._texture_fill = counted_fill  # type: ignore[method-assign]
        for cls in Layout.__subclasses__():
            if "do_layout" in vars(cls):
                orig = cls.do_layout

                @functools.wraps(orig)  # triggers look the method up by its name
                def wrapped(layout: Any, *a: Any, _orig: Any = orig, **k: Any) -> Any:
                    frames.layouts += 1
                    frames.layout_kinds[type(layout).__name__] += 1
                    return _orig(layout, *a, **k)

                cls.do_layout = wrapped  # type: ignore[method-assign]
        Layout.do_layout = counted_layout  # type: ignore[method-assign]
        self._text_set = text_set
        self._label = Label

    def watch_texts(self, root: Any) -> None:
        for widget in root.walk(restrict=False):
            if isinstance(widget, self._label):
                widget.fbind("text", self._text_set)

    def frame(self) -> None:
        """One pass of Kivy's loop (kivy.base.EventLoop.idle), timed phase by phase."""
        from kivy.base import EventLoop
        from kivy.clock import Clock
        from kivy.lang import Builder

        self.textures.clear()
        self.layouts = 0
        self.layout_kinds.clear()
        self.filled = 0
        self.texts_set.clear()
        clock: Any = Clock
        t = [time.perf_counter()]
        clock.pre_idle()
        ts = clock.time()
        current = clock.idle()
        t.append(time.perf_counter())
        if self.profile:
            self.profile.enable()
        clock.post_idle(ts, current)
        t.append(time.perf_counter())
        EventLoop.dispatch_input()
        t.append(time.perf_counter())
        Builder.sync()
        Clock.tick_draw()
        Builder.sync()
        t.append(time.perf_counter())
        window = EventLoop.window
        drawn = bool(window and window.canvas.needs_redraw)
        if drawn:
            window.dispatch("on_draw")
            t.append(time.perf_counter())
            window.dispatch("on_flip")
        else:
            t.append(time.perf_counter())
        t.append(time.perf_counter())
        if self.profile:
            self.profile.disable()
        self.frames.append(
            {
                "start": t[0],
                "end": t[-1],
                "drawn": drawn,
                "phases": [b - a for a, b in zip(t, t[1:], strict=False)],
                "textures": sum(self.textures.values()),
                "twice": sum(1 for n in self.textures.values() if n > 1),
                "filled": self.filled,
                "layouts": self.layouts,
                "layout_kinds": dict(self.layout_kinds),
                "texts_again": sum(1 for n in self.texts_set.values() if n > 1),
                "marks": [m for m in self.marks if t[0] <= m[0] <= t[-1]],
            }
        )

    def record(
        self,
        summary: dict[str, list[float]],
        t0: float,
        handed: float,
        rendered: float,
        label: str,
        last: bool,
    ) -> None:
        """One repeat's moments; the last one's frames printed, and each profile."""
        summary["handed"].append(handed - t0)
        summary["rendered"].append(rendered - t0)
        summary["flipped"].append(first_flip(self.frames, rendered) - t0)
        if last:
            show(self.frames, t0, label)
        if self.profile:
            pstats.Stats(self.profile).strip_dirs().sort_stats("cumulative").print_stats(25)

    def until(self, predicate: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("step did not finish")
            self.frame()


def first_flip(frames: list[dict[str, Any]], after: float) -> float:
    """The end of the first drawn frame that ends after `after` (its flip)."""
    return next(f["end"] for f in frames if f["drawn"] and f["end"] > after)


def show(frames: list[dict[str, Any]], t0: float, label: str) -> None:
    print(f"-- {label}: frames from the hand-over (ms from the event)")
    print(
        "  start    end  drawn "
        + " ".join(f"{p:>12}" for p in PHASES)
        + "  tex fill lay again marks"
    )
    quiet = 0
    for f in frames:
        if not (f["drawn"] or f["marks"] or f["textures"] or f["layouts"]):
            quiet += 1
            continue
        if quiet:
            print(f"  ({quiet} frames with nothing to draw)")
            quiet = 0
        phases = " ".join(f"{p * 1000:12.1f}" for p in f["phases"])
        marks = ", ".join(f"{name}@{(at - t0) * 1000:.1f}" for at, name in f["marks"])
        print(
            f"{(f['start'] - t0) * 1000:7.1f} {(f['end'] - t0) * 1000:6.1f} {f['drawn']!s:>6} "
            f"{phases}  {f['textures']:3d} {f['filled']:4d} {f['layouts']:3d} {f['texts_again']:5d} {marks}"
        )
        if f["layouts"]:
            kinds = sorted(f["layout_kinds"].items(), key=lambda kv: -kv[1])
            print("         layout passes: " + ", ".join(f"{k} {n}" for k, n in kinds))


def card(repeat: int, delay: float, profile: bool) -> None:
    from kiosk.core.events import Action, Tapped

    kiosk = KioskRun(acs_delay_s=delay, own_process=True)
    app = kiosk.start()
    fr = Frames()
    fr.instrument()
    circ = app.services.circulation
    render = app.render

    def marked(state: Any) -> Any:
        fr.marks.append((time.perf_counter(), f"render {state.stage.value}"))
        result = render(state)
        fr.marks.append((time.perf_counter(), f"rendered {app.current_screen}"))
        return result

    app.render = marked
    listener = app.services.session._listener

    def handed(state: Any) -> None:
        fr.marks.append((time.perf_counter(), f"handed {state.stage.value}"))
        listener(state)

    app.services.session.set_listener(handed)
    summary: dict[str, list[float]] = {k: [] for k in ("handed", "rendered", "flipped")}
    try:
        wait_until(lambda: circ.status().online, timeout=30)
        # two visits first, so every screen and its texts have been drawn once
        for n in range(repeat + 2):
            fr.watch_texts(app.kiosk_root)
            fr.frames.clear()
            fr.marks.clear()
            fr.profile = cProfile.Profile() if profile and n >= 2 else None
            t0 = time.perf_counter()
            app.present_card("LV0001")
            fr.until(lambda: app.current_screen == "checkout")
            shown = next(m for m in fr.marks if m[1] == "rendered checkout")
            handed = next(m for m in fr.marks if m[1] == "handed active")
            for _ in range(3):  # what follows the frame that shows it
                fr.frame()
            if n >= 2:  # after two visits that drew every screen once
                fr.record(
                    summary, t0, handed[0], shown[0], "card -> patron screen", n == repeat + 1
                )
            app.post(Tapped(Action.LOGOUT))
            fr.until(lambda: app.current_screen == "welcome")
            for _ in range(3):
                fr.frame()
    finally:
        kiosk.stop()
    medians(summary)


def tag(repeat: int, profile: bool) -> None:
    from kiosk.devices.readers.sim import demo_tag

    kiosk = KioskRun(poll_interval_s=0.2, own_process=True)
    app = kiosk.start()
    fr = Frames()
    fr.instrument()
    seen = app._seen_on_pad

    def marked(*args: Any) -> Any:
        fr.marks.append((time.perf_counter(), "seen on pad"))
        result = seen(*args)
        fr.marks.append((time.perf_counter(), "row built"))
        return result

    app._seen_on_pad = marked
    on_tags = app._on_tags
    summary: dict[str, list[float]] = {k: [] for k in ("handed", "rendered", "flipped")}

    def handed(*args: Any) -> None:
        if args[1]:
            fr.marks.append((time.perf_counter(), "handed"))
        on_tags(*args)

    try:
        wait_until(lambda: app.services.circulation.status().online, timeout=60)
        ids = add_items(kiosk.acs, "35000", repeat + 2)
        kiosk.login("LV0002")
        app.services.stack.on_change = handed
        pad = app.services.pad
        pad.timing = "iso15693"
        for n, item_id in enumerate(ids):
            pad.clear()
            fr.until(lambda: not app.services.stack.current())
            for _ in range(3):
                fr.frame()
            fr.watch_texts(app.kiosk_root)
            fr.frames.clear()
            fr.marks.clear()
            fr.profile = cProfile.Profile() if profile and n >= 2 else None
            t0 = time.perf_counter()
            pad.place(demo_tag(item_id))
            fr.until(lambda item_id=item_id: item_id in kiosk.rows())
            built = next(m for m in fr.marks if m[1] == "row built")
            hand = next(m for m in fr.marks if m[1] == "handed")
            for _ in range(3):
                fr.frame()
            if n >= 2:
                fr.record(summary, t0, hand[0], built[0], "tag -> row", n == repeat + 1)
            fr.until(lambda item_id=item_id: kiosk.items()[item_id].final)
    finally:
        kiosk.stop()
    medians(summary)


def medians(summary: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) * 1000 for k, v in summary.items()}
    print(
        f"medians (ms from the event): handed to the UI thread {med['handed']:.1f}, "
        f"rendered {med['rendered']:.1f}, frame flipped {med['flipped']:.1f} "
        f"(hand-over -> render {med['rendered'] - med['handed']:.1f}, "
        f"render -> flip {med['flipped'] - med['rendered']:.1f})"
    )


def main() -> None:
    one_core_if_asked(sys.argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", choices=("card", "tag"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    headless_env()
    if args.path == "card":
        card(args.repeat, args.delay, args.profile)
    else:
        tag(args.repeat, args.profile)


if __name__ == "__main__":
    main()
