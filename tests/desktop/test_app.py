"""Process-wide application setup: garbage is collected on the GUI thread while the app runs."""

from __future__ import annotations

import gc
import threading
import weakref

from desktop.app import application, gui_thread_gc


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_cyclic_garbage_is_collected_by_the_gui_threads_timer_only(qtbot):
    application()
    assert gc.isenabled()
    with gui_thread_gc(interval=0.05):
        assert not gc.isenabled()  # no collection can start on a worker thread
        refs = []

        def make_garbage() -> None:  # a worker thread leaves cyclic garbage behind
            for _ in range(2000):
                refs.append(weakref.ref(_Cycle()))

        worker = threading.Thread(target=make_garbage)
        worker.start()
        worker.join()
        assert all(r() is not None for r in refs[:10])  # nothing collected it off the GUI thread
        qtbot.waitUntil(lambda: all(r() is None for r in refs), timeout=5_000)  # the GUI thread's timer did
    assert gc.isenabled()
