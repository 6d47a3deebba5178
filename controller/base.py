"""The propose/feedback interface every controller shares, with its bookkeeping.

In the spirit of pyglove's ``propose``/``feedback``: the search loop asks for a
:class:`Proposal`, evaluates it (possibly in another process, possibly out of
order) and reports a reward, or that the trial failed. The controller learns
once a full batch of rewards has arrived; failed trials never reach the
learner. Everything needed to continue a search exactly (weights, optimizer,
baseline, counters, proposals still in flight) goes into one
``tf.train.Checkpoint``.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
import numbers
import operator
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import tensorflow as tf

from mnas.controller.config import ControllerConfig
from mnas.search_space.decision import Decision

# Checkpoints kept per directory; older ones are deleted on save.
_MAX_TO_KEEP = 2


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One sampled architecture, identified by ``proposal_id`` until its feedback.

    Attributes:
      proposal_id: unique, increasing id; pass it back to ``feedback``.
      actions: one choice index per decision, in the space's decision order.
      log_prob: log-probability of ``actions`` under the policy that sampled
        them (PPO's importance ratio needs it).
      policy_version: number of updates the policy had seen when sampling.
    """

    proposal_id: int
    actions: tuple[int, ...]
    log_prob: float
    policy_version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "proposal_id": self.proposal_id,
            "actions": list(self.actions),
            "log_prob": self.log_prob,
            "policy_version": self.policy_version,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Proposal:
        return cls(
            proposal_id=int(values["proposal_id"]),
            actions=tuple(int(a) for a in values["actions"]),
            log_prob=float(values["log_prob"]),
            policy_version=int(values["policy_version"]),
        )


class FeedbackError(ValueError):
    """Feedback the controller cannot accept; its state is left unchanged."""


class UnknownProposalError(FeedbackError):
    """The id was never proposed by this controller."""


class DuplicateFeedbackError(FeedbackError):
    """The proposal already got a reward or was reported failed."""


class InvalidRewardError(FeedbackError):
    """The reward is not a finite real number."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was written by a controller with other decisions or config."""


def _validate_decisions(decisions: Sequence[Decision]) -> tuple[Decision, ...]:
    decisions = tuple(decisions)
    if not decisions:
        raise ValueError("a controller needs at least one decision")
    names: set[str] = set()
    for index, decision in enumerate(decisions):
        if not isinstance(decision, Decision):
            raise TypeError(
                f"decision {index} is a {type(decision).__name__}, not a Decision"
            )
        if decision.num_choices < 1:
            raise ValueError(f"decision {decision.name!r} has no choices")
        if decision.name in names:
            raise ValueError(f"duplicate decision name {decision.name!r}")
        names.add(decision.name)
    return decisions


class Controller(abc.ABC):
    """Proposes architectures and learns from their rewards, one batch at a time.

    Subclasses implement :meth:`_sample`, :meth:`_update`, :meth:`log_prob` and
    :meth:`_trackables`; this class owns ids, validation, batching and
    checkpointing so that every controller behaves the same to the search loop.
    """

    #: Name recorded in checkpoints, so a checkpoint is never restored into a
    #: controller of another kind.
    kind: ClassVar[str] = "abstract"

    def __init__(self, decisions: Sequence[Decision], config: ControllerConfig):
        if not isinstance(config, ControllerConfig):
            raise TypeError(
                f"config must be a ControllerConfig, got {type(config).__name__}"
            )
        self._decisions = _validate_decisions(decisions)
        self._config = config
        self._next_id = 0
        self._pending: dict[int, Proposal] = {}
        self._buffer: list[tuple[Proposal, float]] = []
        self._num_updates = 0
        self._num_rewards = 0
        self._num_failed = 0
        self._stats: dict[str, float] = {}
        # Python-side state travels as JSON inside the TF checkpoint (no pickle).
        self._bookkeeping = tf.Variable("", dtype=tf.string, trainable=False)
        self._spec = tf.Variable(self._spec_json(), dtype=tf.string, trainable=False)
        self._checkpoint: tf.train.Checkpoint | None = None
        self._managers: dict[str, tf.train.CheckpointManager] = {}

    # ----------------------------------------------------------------- views

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return self._decisions

    @property
    def config(self) -> ControllerConfig:
        return self._config

    @property
    def num_updates(self) -> int:
        """Policy updates so far; one per full batch of rewards."""
        return self._num_updates

    @property
    def num_proposed(self) -> int:
        """Proposals handed out so far (the next proposal's id)."""
        return self._next_id

    @property
    def num_pending(self) -> int:
        """Proposals handed out that have neither a reward nor a failure yet."""
        return len(self._pending)

    def pending_proposals(self) -> tuple[Proposal, ...]:
        """Proposals awaiting feedback, oldest first; re-run these after resume."""
        return tuple(self._pending[key] for key in sorted(self._pending))

    def state_summary(self) -> dict[str, float]:
        """Scalars worth plotting (counters, and baseline/entropy/loss once known)."""
        summary = {
            "num_updates": float(self._num_updates),
            "num_rewards": float(self._num_rewards),
            "num_failed": float(self._num_failed),
            "num_pending": float(len(self._pending)),
            "num_buffered": float(len(self._buffer)),
        }
        summary.update(self._stats)
        return summary

    # --------------------------------------------------------------- protocol

    def propose(self) -> Proposal:
        """Samples the next architecture (same as ``propose_batch(1)[0]``)."""
        return self.propose_batch(1)[0]

    def propose_batch(self, count: int) -> tuple[Proposal, ...]:
        """Samples ``count`` architectures in one go (one graph call for the LSTM).

        Sampling is seeded by ``(config.seed, first proposal id, count)``, so the
        same seed and the same sequence of calls give the same proposals; a
        batch of ``n`` need not equal ``n`` single proposals.
        """
        count = operator.index(count)
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        first_id = self._next_id
        samples = self._sample(first_id, count)
        if len(samples) != count:
            raise RuntimeError(f"_sample returned {len(samples)} of {count} proposals")
        proposals = tuple(
            Proposal(
                proposal_id=first_id + index,
                actions=tuple(int(a) for a in actions),
                log_prob=float(log_prob),
                policy_version=self._num_updates,
            )
            for index, (actions, log_prob) in enumerate(samples)
        )
        self._next_id += count
        for proposal in proposals:
            self._pending[proposal.proposal_id] = proposal
        return proposals

    def feedback(self, proposal_id: int, reward: float) -> bool:
        """Records ``reward`` for a pending proposal; updates on a full batch.

        Returns:
          True if this reward completed a batch and the policy was updated.

        Raises:
          UnknownProposalError, DuplicateFeedbackError, InvalidRewardError: the
            controller's state is unchanged.
        """
        proposal_id = self._check_pending(proposal_id)
        if isinstance(reward, bool) or not isinstance(reward, numbers.Real):
            raise InvalidRewardError(
                f"reward for proposal {proposal_id} must be a real number, "
                f"got {type(reward).__name__} {reward!r}"
            )
        reward = float(reward)
        if not math.isfinite(reward):
            raise InvalidRewardError(
                f"reward for proposal {proposal_id} is {reward}; a trial without "
                "a finite reward must be reported with feedback_failed()"
            )
        proposal = self._pending.pop(proposal_id)
        self._buffer.append((proposal, reward))
        self._num_rewards += 1
        if len(self._buffer) < self._config.batch_size:
            return False
        batch = self._buffer[: self._config.batch_size]
        stats = self._update(batch)
        # Only drop the batch once the update succeeded.
        del self._buffer[: self._config.batch_size]
        self._num_updates += 1
        self._stats.update(stats)
        return True

    def feedback_failed(self, proposal_id: int, reason: str = "") -> None:
        """Drops a proposal whose trial failed; it never reaches the learner.

        ``reason`` is accepted for the caller's logs; the controller only
        counts failures.
        """
        del reason
        proposal_id = self._check_pending(proposal_id)
        del self._pending[proposal_id]
        self._num_failed += 1

    def _check_pending(self, proposal_id: int) -> int:
        if isinstance(proposal_id, bool):
            raise UnknownProposalError(f"proposal id must be an int, got {proposal_id}")
        try:
            proposal_id = operator.index(proposal_id)
        except TypeError:
            raise UnknownProposalError(
                f"proposal id must be an int, got {type(proposal_id).__name__} "
                f"{proposal_id!r}"
            ) from None
        if proposal_id in self._pending:
            return proposal_id
        if 0 <= proposal_id < self._next_id:
            raise DuplicateFeedbackError(
                f"proposal {proposal_id} already received a reward or was "
                "reported failed"
            )
        raise UnknownProposalError(
            f"proposal {proposal_id} was never proposed by this controller "
            f"(ids so far: 0..{self._next_id - 1})"
        )

    # -------------------------------------------------------------- subclass

    @abc.abstractmethod
    def _sample(
        self, first_id: int, count: int
    ) -> Sequence[tuple[Sequence[int], float]]:
        """``count`` (actions, log_prob) pairs, seeded by (config.seed, first_id)."""

    @abc.abstractmethod
    def _update(self, batch: Sequence[tuple[Proposal, float]]) -> dict[str, float]:
        """Learns from one batch of (proposal, reward); returns summary scalars."""

    @abc.abstractmethod
    def log_prob(self, actions: Sequence[int]) -> float:
        """Log-probability of an architecture under the current policy."""

    def _trackables(self) -> dict[str, Any]:
        """TF objects (modules, optimizers, variables) to checkpoint."""
        return {}

    def _check_actions(self, actions: Sequence[int]) -> tuple[int, ...]:
        if isinstance(actions, str | bytes | bytearray | memoryview):
            # Their items are characters or bytes, never the caller's actions.
            raise ValueError(
                f"actions must be a sequence of integers, got {type(actions).__name__}"
            )
        actions = tuple(operator.index(a) for a in actions)
        if len(actions) != len(self._decisions):
            raise ValueError(
                f"expected {len(self._decisions)} actions, got {len(actions)}"
            )
        for action, decision in zip(actions, self._decisions, strict=True):
            if not 0 <= action < decision.num_choices:
                raise ValueError(
                    f"action {action} out of range for {decision.name!r} "
                    f"({decision.num_choices} choices)"
                )
        return actions

    # ----------------------------------------------------------- checkpoints

    def _spec_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "decisions": [
                    [d.name, d.kind, list(d.choices)] for d in self._decisions
                ],
                "config": self._config.to_dict(),
            },
            sort_keys=True,
        )

    def _get_checkpoint(self) -> tf.train.Checkpoint:
        if self._checkpoint is None:
            self._checkpoint = tf.train.Checkpoint(
                bookkeeping=self._bookkeeping, spec=self._spec, **self._trackables()
            )
            # Created now, so a fresh controller restores it like everything else.
            _ = self._checkpoint.save_counter
        return self._checkpoint

    def _bookkeeping_json(self) -> str:
        return json.dumps(
            {
                "next_id": self._next_id,
                "num_updates": self._num_updates,
                "num_rewards": self._num_rewards,
                "num_failed": self._num_failed,
                "pending": [p.to_dict() for p in self.pending_proposals()],
                "buffer": [[p.to_dict(), r] for p, r in self._buffer],
                "stats": self._stats,
            }
        )

    def _load_bookkeeping(self, text: str) -> None:
        state = json.loads(text)
        self._next_id = int(state["next_id"])
        self._num_updates = int(state["num_updates"])
        self._num_rewards = int(state["num_rewards"])
        self._num_failed = int(state["num_failed"])
        pending = [Proposal.from_dict(p) for p in state["pending"]]
        self._pending = {p.proposal_id: p for p in pending}
        self._buffer = [(Proposal.from_dict(p), float(r)) for p, r in state["buffer"]]
        self._stats = {str(k): float(v) for k, v in state["stats"].items()}

    def save(self, directory: str | os.PathLike[str]) -> str:
        """Writes a checkpoint into ``directory``; returns its path prefix.

        A ``tf.train.CheckpointManager`` publishes the new checkpoint only after
        its files are complete, so a process killed mid-save leaves the previous
        checkpoint as the latest one.
        """
        directory = os.fspath(directory)
        self._bookkeeping.assign(self._bookkeeping_json())
        manager = self._managers.get(directory)
        if manager is None:
            manager = tf.train.CheckpointManager(
                self._get_checkpoint(), directory, max_to_keep=_MAX_TO_KEEP
            )
            self._managers[directory] = manager
        return manager.save()

    def restore(self, path: str | os.PathLike[str]) -> str:
        """Restores from a directory's latest checkpoint, or a checkpoint prefix.

        Returns the prefix read. Refuses checkpoints written with other decisions,
        another controller kind or another config.
        """
        path = os.fspath(path)
        prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
        if prefix is None or not tf.io.gfile.exists(prefix + ".index"):
            raise FileNotFoundError(f"no controller checkpoint at {path!r}")
        try:
            saved_spec = tf.train.load_variable(
                prefix, "spec/.ATTRIBUTES/VARIABLE_VALUE"
            )
        except (tf.errors.NotFoundError, ValueError) as error:
            raise CheckpointMismatchError(
                f"{prefix!r} is not a controller checkpoint: {error}"
            ) from error
        saved_spec = (
            saved_spec.decode() if isinstance(saved_spec, bytes) else saved_spec
        )
        differences = _spec_differences(
            json.loads(saved_spec), json.loads(self._spec_json())
        )
        if differences:
            raise CheckpointMismatchError(
                f"checkpoint {prefix!r} belongs to a different controller: "
                + "; ".join(differences)
            )
        self._get_checkpoint().read(prefix).assert_consumed()
        self._load_bookkeeping(self._bookkeeping.numpy().decode())
        return prefix


def _spec_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any]
) -> list[str]:
    """Human-readable differences between two controller specs."""
    differences = []
    if saved["kind"] != current["kind"]:
        differences.append(f"kind {saved['kind']!r} != {current['kind']!r}")
    if saved["decisions"] != current["decisions"]:
        saved_names = [d[0] for d in saved["decisions"]]
        current_names = [d[0] for d in current["decisions"]]
        if saved_names != current_names:
            differences.append(
                f"decisions differ ({len(saved_names)} saved vs "
                f"{len(current_names)} now)"
            )
        else:
            changed = [
                s[0]
                for s, c in zip(saved["decisions"], current["decisions"], strict=True)
                if s != c
            ]
            differences.append(f"choices differ for {changed}")
    for key in sorted(set(saved["config"]) | set(current["config"])):
        old, new = saved["config"].get(key), current["config"].get(key)
        if old != new:
            differences.append(f"config.{key}: {old!r} != {new!r}")
    return differences
