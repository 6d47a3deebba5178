"""``SharedConfig``: the knobs of weight-sharing evaluation (TuNAS-style).

TuNAS (Bender et al., CVPR 2020; google-research/tunas
``mobile_architecture_search.py``) trains one supernet while a controller
samples paths; its defaults are set for 90 epochs of ImageNet on a TPU slice
(batch 4,096, RMSProp). The values here are for a 15-minute run on two CPU
cores, with the same three warm-ups against "rich get richer" (paths that
happen to be trained early win early and get trained more):

* ``rl_delay``: the controller learns nothing for this fraction of the
  architectures (TuNAS ``rl_delay_steps_fraction`` = 0.25: an RL learning rate
  of 0). TuNAS's zero-initialised logits then sample uniformly; here the paths
  of that phase are drawn uniformly (stateless, by trial id) and the
  controller sees none of them.
* ``ops_warmup``: with a probability falling linearly from 1 to 0 over this
  fraction of the architectures, each op decision (op, kernel, SE, skip) of
  the *weight step's* path is replaced by all its choices at once, averaged
  (TuNAS ``increase_ops_warmup_steps_fraction`` = 0.25). A slot whose op is
  widened computes every candidate op: a widened step cost 3-6 s against
  well under 1 s for a plain one on this project's loaded 2-core machine
  (docs/shared_evaluation.md), so TuNAS's 0.25 would make the first quarter
  cost three times the rest. Off by default: the RL delay's uniform paths
  already train every op before the controller starts.
* ``filters_warmup``: likewise each width decision (filters, layers) is
  replaced by its largest choice (TuNAS ``increase_filters_warmup_steps_fraction``
  = 0.25; the layer count is TuNAS's "zero" op, so its largest choice is the
  same idea).

Unlike TuNAS, the controller's reward is always the accuracy of the sampled
path itself: the widening only touches the weight step (TuNAS widens both,
which is why it needs ``warm-up <= rl_delay``; here any fractions are valid).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any


class SharedConfigError(ValueError):
    """Weight-sharing evaluation cannot run with these settings."""


@dataclasses.dataclass(frozen=True)
class SharedConfig:
    """How the shared weights are trained and the paths scored.

    Attributes:
      resolution: side in pixels the supernet trains and scores at (the
        proxy images are resized to it once; None keeps the proxy data's).
        The standalone verification trains at the proxy data's own. 16 by
        default: the embedded digits are 8x8 scans (upsampled to 32 by the
        proxy data), and a step at 16 px has a quarter of the pixels of one
        at 32 (docs/shared_evaluation.md).
      batch_size: training images per weight step (one step per architecture).
      eval_batch_size: held-out images the sampled path is scored on (TuNAS
        uses 4x the training batch; the held-out split of the embedded digits
        has 359 images, so 64 gives accuracies in steps of 1/64).
      learning_rate: peak Adam step of the shared weights; cosine decay to 0
        over ``num_trials`` steps after a linear warm-up of ``lr_warmup``.
      lr_warmup: fraction of the steps the learning rate ramps up over
        (TuNAS: 0.025).
      rl_delay, ops_warmup, filters_warmup: fractions of ``num_trials``; see the
        module docstring.
      checkpoint_every: architectures between checkpoints of the shared weights
        (and their optimizer); on resume the weight steps of the architectures
        journaled after the last checkpoint are replayed, so this bounds the
        replay (each replayed step costs about one step).
      rescore: distinct architectures of the last quarter of the search
        (by mean reward) that are scored again at the end with the final
        shared weights on the whole held-out split; the best ``top_k`` of them
        are trained standalone and timed (``best.json``).
    """

    resolution: int | None = 16
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 0.005
    lr_warmup: float = 0.025
    rl_delay: float = 0.25
    ops_warmup: float = 0.0
    filters_warmup: float = 0.25
    checkpoint_every: int = 100
    rescore: int = 24

    def __post_init__(self) -> None:
        if self.resolution is not None and (
            isinstance(self.resolution, bool)
            or not isinstance(self.resolution, int)
            or not 8 <= self.resolution <= 1024
        ):
            raise SharedConfigError(
                f"resolution must be an integer in [8, 1024] or None, got "
                f"{self.resolution!r}"
            )
        for name in ("batch_size", "eval_batch_size", "checkpoint_every", "rescore"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SharedConfigError(
                    f"{name} must be an integer >= 1, got {value!r}"
                )
        if not (
            isinstance(self.learning_rate, int | float)
            and math.isfinite(self.learning_rate)
            and self.learning_rate > 0
        ):
            raise SharedConfigError(
                f"learning_rate must be a finite number > 0, got {self.learning_rate!r}"
            )
        for name in ("lr_warmup", "rl_delay", "ops_warmup", "filters_warmup"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                raise SharedConfigError(f"{name} must be in [0, 1), got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SharedConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SharedConfigError(
                f"unknown shared evaluation fields: {', '.join(unknown)}"
            )
        return cls(**values)

    # -- schedules (functions of the trial id, so a resume needs no state) --------
    def phase_steps(self, num_trials: int, fraction: float) -> int:
        return int(round(fraction * num_trials))

    def widen_probability(self, step: int, num_trials: int, fraction: float) -> float:
        """TuNAS's linear decay: 1 at step 0, 0 from ``fraction`` of the run on."""
        steps = self.phase_steps(num_trials, fraction)
        if steps <= 0:
            return 0.0
        return max(0.0, 1.0 - step / steps)

    def learning_rate_at(self, step: int, num_trials: int) -> float:
        """Linear warm-up, then cosine decay to 0 at ``num_trials``."""
        warmup = self.phase_steps(num_trials, self.lr_warmup)
        if step < warmup:
            return self.learning_rate * (step + 1) / warmup
        span = max(1, num_trials - warmup)
        progress = min(1.0, (step - warmup) / span)
        return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
