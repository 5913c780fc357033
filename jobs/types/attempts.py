"""Automatic retries: how many attempts a job has, and how long it waits before the next one."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jobs.model import DAY

MAX_ATTEMPTS = 100
MAX_DELAY_SECONDS = 7 * DAY
BACKOFF_TYPES = ("fixed", "exponential")


@dataclass(frozen=True)
class Backoff:
    """The wait before each automatic retry: fixed `delay_seconds`, or exponential (d, 2d, 4d ... up to
    `max_delay_seconds`); with `jitter`, a random half of it is taken off, so failed jobs spread out."""

    type: str = "exponential"
    delay_seconds: float = 1.0
    max_delay_seconds: float = 3600.0
    jitter: bool = False

    def __post_init__(self) -> None:
        if self.type not in BACKOFF_TYPES:
            raise ValueError(f"backoff type must be one of {', '.join(BACKOFF_TYPES)}, got {self.type!r}")
        if not 0 <= self.delay_seconds <= self.max_delay_seconds <= MAX_DELAY_SECONDS:
            raise ValueError("backoff needs 0 <= delay_seconds <= max_delay_seconds <= 7 days")

    def seconds(self, failed: int, rand: float) -> float:
        """The wait after the `failed`-th failed attempt of a run (1-based); `rand` in [0, 1) for jitter."""
        wait = self.delay_seconds if self.type == "fixed" else self.delay_seconds * 2 ** min(failed - 1, 60)
        wait = min(wait, self.max_delay_seconds)
        return wait * (1 - rand / 2) if self.jitter else wait

    def packed(self) -> list[Any]:
        """The backoff as a job's hash keeps it: a short list, so the hash stays a listpack (every value under
        Redis's 64 bytes; the dict's JSON is 78)."""
        return [self.type, self.delay_seconds, self.max_delay_seconds, self.jitter]

    @classmethod
    def unpacked(cls, packed: list[Any] | dict[str, Any]) -> Backoff:
        """The backoff of `packed()` (or of a dict: a job stored before it)."""
        return cls(**packed) if isinstance(packed, dict) else cls(*packed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
