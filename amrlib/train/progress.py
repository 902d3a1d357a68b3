"""The training progress bar: a Rich bar per epoch (frames/s, ETA), silent on CI, --quiet or no terminal."""
from __future__ import annotations

import os
import sys
import time


def progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return sys.stderr.isatty() and not os.environ.get("CI")


class EpochBar:
    """A Rich progress bar (frames/s, ETA), silent when disabled (CI, --quiet, no terminal)."""

    def __init__(self, enabled: bool, epochs: int, batches: int):
        self.enabled, self.epochs, self.batches = enabled, epochs, batches
        self.task = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
            self.p = Progress(TextColumn("{task.description}"), BarColumn(),
                              TextColumn("{task.fields[fps]:>7.0f} frames/s"), TimeRemainingColumn(),
                              transient=False)
            self.p.start()

    def start_epoch(self, epoch, step):
        if self.enabled:
            self.p.console.file.flush()
            self.task = self.p.add_task(f"epoch {epoch + 1}/{self.epochs}", total=self.batches,
                                        completed=step, fps=0.0)
            self.t0, self.frames = time.perf_counter(), 0

    def advance(self, frames):
        if self.enabled:
            self.frames += frames
            fps = self.frames / max(time.perf_counter() - self.t0, 1e-9)
            self.p.update(self.task, advance=1, fps=fps)

    def end_epoch(self, rec):
        if self.enabled:
            self.p.update(self.task, description=f"epoch {rec['epoch']}/{self.epochs} "
                          f"val {rec['val_accuracy']:.3f}")

    def close(self):
        if self.enabled:
            self.p.stop()
