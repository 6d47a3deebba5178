"""Hooks into the search loop (in the style of Keras callbacks).

The loop calls them in order; display, outputs and TensorBoard summaries are
callbacks, and a caller can add its own (``Search(..., callbacks=[...])``).
``ranked`` is always the completed trials, best first (``outputs.rank_trials``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mnas.search.trial import TrialRecord


class Callback:
    """Every hook is a no-op; override the ones you need."""

    def on_search_begin(self, finished: int) -> None:
        """Before the first trial; ``finished`` trials are already in the journal."""

    def on_trial_begin(self, record: TrialRecord) -> None:
        """A RUNNING trial was recorded and submitted."""

    def on_trial_end(self, record: TrialRecord, ranked: Sequence[TrialRecord]) -> None:
        """A trial was recorded as COMPLETED or FAILED and fed back."""

    def on_controller_update(self, controller: Any) -> None:
        """A reward completed a batch and the controller's policy was updated."""

    def on_search_end(self, ranked: Sequence[TrialRecord]) -> None:
        """After the loop, also when it stops early; release resources here."""


class TensorBoardLogger(Callback):
    """Trial and controller scalars under ``<work_dir>/tensorboard``."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self._writer = None

    def _summary_writer(self):
        if self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_trial_end(self, record: TrialRecord, ranked: Sequence[TrialRecord]) -> None:
        if record.status != "COMPLETED":
            return
        import tensorflow as tf

        with self._summary_writer().as_default(step=record.trial_id):
            tf.summary.scalar("trial/reward", record.reward)
            tf.summary.scalar("trial/accuracy", record.accuracy)
            tf.summary.scalar("trial/latency_ms", record.latency_ms)
        self._summary_writer().flush()

    def on_controller_update(self, controller: Any) -> None:
        import tensorflow as tf

        summary = controller.state_summary()
        with self._summary_writer().as_default(step=controller.num_updates):
            for key in ("baseline", "entropy", "loss", "mean_reward"):
                if key in summary:
                    tf.summary.scalar(f"controller/{key}", summary[key])

    def on_search_end(self, ranked: Sequence[TrialRecord]) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
