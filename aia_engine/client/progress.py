"""A one-line progress bar with rate and ETA, redrawn in place on a terminal."""

from __future__ import annotations

import time
from typing import TextIO

from aia_engine.client.batch import BatchSummary


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """Call it with (summary, phase) as `submit_file`'s `progress`; `close()` ends the line."""

    def __init__(self, stream: TextIO, *, width: int = 28, interval_s: float = 0.1) -> None:
        self.stream = stream
        self.width = width
        self.interval_s = interval_s
        self.note = ""
        self._phase = ""
        self._phase_start = 0.0
        self._phase_base = 0
        self._drawn_at = 0.0
        self._last_len = 0

    def waiting(self, reason: str, seconds: float) -> None:
        """The SDK client's `on_retry`: say why nothing moves (rate limit, quota, network)."""
        self.note = f"waiting {seconds:.0f}s: {reason}"

    def __call__(self, summary: BatchSummary, phase: str) -> None:
        if phase == "submit":
            done, total, label = summary.done, summary.total, "submitting"
        else:
            total = len(summary.tasks)
            done, label = total - summary.unfinished, "finishing "
        now = time.monotonic()
        if phase != self._phase:
            if self._phase:
                self.stream.write("\n")
                self._last_len = 0
            self._phase, self._phase_start, self._phase_base = phase, now, done
        if now - self._drawn_at < self.interval_s and done < total:
            return
        self._drawn_at = now
        elapsed = max(now - self._phase_start, 1e-6)
        rate = (done - self._phase_base) / elapsed
        eta = _duration((total - done) / rate) if rate > 0 and done < total else "--:--"
        share = done / total if total else 1.0
        filled = int(self.width * share)
        text = (
            f"{label} [{'#' * filled}{'-' * (self.width - filled)}] {done}/{total} "
            f"{share * 100:5.1f}% {rate:,.0f}/s ETA {eta}"
        )
        if summary.rejected or summary.failed:
            text += f" ({len(summary.rejected)} rejected, {len(summary.failed)} failed)"
        if self.note and done < total:
            text += f" {self.note}"
        self.note = ""
        self.stream.write("\r" + text + " " * max(0, self._last_len - len(text)))
        self.stream.flush()
        self._last_len = len(text)

    def close(self) -> None:
        if self._phase:
            self.stream.write("\n")
            self.stream.flush()


class ByteProgress:
    """A progress bar of bytes sent (`aia-engine datasets upload`): call it with (done, total)."""

    def __init__(self, stream: TextIO, *, label: str = "uploading", width: int = 28) -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn_at < 0.1 and done < total:
            return
        self._drawn_at = now
        rate = done / max(now - self._started, 1e-6)
        eta = _duration((total - done) / rate) if rate > 0 and done < total else "--:--"
        share = done / total if total else 1.0
        filled = int(self.width * min(share, 1.0))
        mb = 1024 * 1024
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'-' * (self.width - filled)}] "
            f"{done / mb:,.1f}/{total / mb:,.1f} MiB {share * 100:5.1f}% "
            f"{rate / mb:,.1f} MiB/s ETA {eta} "
        )
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
