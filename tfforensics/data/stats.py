"""Per-coefficient statistics over a split, computed batch-wise and merged across workers.

Chan et al.'s parallel update of Welford's algorithm: each worker summarises its
batches as ``(count, mean, M2, max|x|)`` and the summaries merge exactly, so the
result equals one sequential Welford pass (the original's ``welford``) without a
per-image Python loop.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfforensics.errors import UserError


@dataclasses.dataclass
class RunningMoments:
    """Running count, mean, sum of squared deviations and max |x| per coefficient."""

    count: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None
    max_abs: np.ndarray | None = None

    def update(self, batch: np.ndarray) -> "RunningMoments":
        """Add a batch ``(N, ...)`` of samples."""
        batch = np.asarray(batch, dtype=np.float64)
        if len(batch) == 0:
            return self
        mean = batch.mean(axis=0)
        other = RunningMoments(
            count=len(batch),
            mean=mean,
            m2=np.square(batch - mean).sum(axis=0),
            max_abs=np.abs(batch).max(axis=0),
        )
        return self.merge(other)

    def merge(self, other: "RunningMoments") -> "RunningMoments":
        """Fold ``other`` into ``self`` (Chan's pairwise update) and return ``self``."""
        if other.count == 0:
            return self
        if self.count == 0:
            self.count, self.mean, self.m2, self.max_abs = other.count, other.mean, other.m2, other.max_abs
            return self
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.count / total)
        self.m2 = self.m2 + other.m2 + np.square(delta) * (self.count * other.count / total)
        self.max_abs = np.maximum(self.max_abs, other.max_abs)
        self.count = total
        return self

    @property
    def variance(self) -> np.ndarray:
        """Population variance (``M2 / n``), as the original ``welford``."""
        if self.count < 2:
            raise UserError(f"Statistics need at least 2 training images. Received: count={self.count}")
        return self.m2 / self.count

    def finalize(self, *, abs_scale: bool = False) -> dict[str, np.ndarray]:
        """``mean``, ``std`` and ``max_abs`` as float64 arrays.

        With ``abs_scale`` the mean and std describe the values after division by
        ``max_abs`` (so ``((x / max_abs) - mean) / std`` is standardised). Zero spreads
        become 1 so that constant coefficients map to 0 instead of NaN.
        """
        max_abs = np.where(self.max_abs > 0, self.max_abs, 1.0)
        scale = max_abs if abs_scale else 1.0
        std = np.sqrt(self.variance) / scale
        std = np.where(std > 0, std, 1.0)
        return {"mean": self.mean / scale, "std": std, "max_abs": max_abs}
