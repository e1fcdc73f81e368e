"""The frame after a snapshot: what the UI thread does between a hand-over from the core worker
or the reader's thread and the flip of the frame that shows it (docs/performance.md, "frame
drawn"). Timings are the benchmarks' business (bench/bench_card_to_greeting.py,
bench/bench_tag_to_screen.py); these tests hold the mechanisms."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from tests.ui.pilot import pump

pytestmark = pytest.mark.skipif(
    os.environ.get("SDL_VIDEODRIVER") != "offscreen",
    reason="frames are waited for at the flip only under SDL's offscreen driver",
)


def test_other_threads_run_while_the_kiosk_waits_for_a_drawn_frame(kiosk) -> None:
    """The library system's answer and the reader's tags are handled on their own threads; the
    wait for a frame at the flip must let them run (Kivy's glFinish kept the interpreter lock
    for the whole frame: 20-40 ms of Mesa's drawing, during which nothing else ran)."""
    from kivy.core.window import Window
    from kivy.graphics import Color, InstructionGroup, Rectangle

    p = kiosk.start("frames-gil-")
    p.wait_screen("welcome")
    pump(3)
    # A frame that takes Mesa a while to draw: forty blended layers over the whole window.
    layers = InstructionGroup()
    for n in range(40):
        layers.add(Color(n / 40, 0.5, 0.5, 0.5))
        layers.add(Rectangle(pos=(0, 0), size=Window.size))
    Window.canvas.after.add(layers)
    released = threading.Lock()
    released.acquire()
    ran: list[str] = []

    def other() -> None:
        with released:  # blocked without the interpreter lock until the main thread lets go
            ran.append(threading.current_thread().name)

    interval = sys.getswitchinterval()
    # The main thread keeps the interpreter lock between blocking calls: only a call that lets
    # it go can hand it to the other thread.
    sys.setswitchinterval(60.0)
    thread = threading.Thread(target=other, name="frames-other")
    try:
        thread.start()  # it runs until it blocks on `released` (start() waits, lock-free)
        Window.dispatch("on_draw")  # the frame's draw calls, queued to Mesa
        released.release()  # the other thread is now ready, and waits for the interpreter lock
        Window.dispatch("on_flip")  # the kiosk's wait for the frame (kiosk.app)
        during_flip = list(ran)
    finally:
        sys.setswitchinterval(interval)
        Window.canvas.after.remove(layers)
    thread.join(10)
    assert ran == ["frames-other"]
    assert during_flip == ["frames-other"], "the flip kept the interpreter lock to itself"
