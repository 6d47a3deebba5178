"""``SearchConfig``: everything that defines one MnasNet search, as typed values.

It is written to the work directory's ``config.json`` and read back on resume;
``from_dict`` also reads the form written before the restructure (untyped
``data``/``trainer``/``controller`` dicts and ``latency_backend``,
``latency_options``, ``latency_cache``), so an old work directory resumes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mnas.controller import CONTROLLER_KINDS, ControllerConfig
from mnas.io.work_dir import check_claim
from mnas.latency.config import LatencyConfig
from mnas.search.reward import RewardConfig
from mnas.search.shared.config import SharedConfig
from mnas.search_space import check_fields, check_int
from mnas.train.data_config import DataConfig
from mnas.train.proxy_config import TrainerConfig

#: The trial journal in a search's work directory.
JOURNAL_FILE = "trials.jsonl"
LATENCY_MODES = ("measured", "predicted", "verified")
#: How a candidate's accuracy is obtained: trained alone with the proxy
#: trainer (MnasNet), or scored on one held-out batch with the weights of a
#: supernet trained along the search (TuNAS; ``mnas.search.shared``).
EVALUATIONS = ("standalone", "shared")
#: Where candidates are evaluated: worker subprocesses here, or a Ray cluster.
EXECUTORS = ("local", "ray")
MAX_TRIAL_RETRIES = 100

# Fields that may change when a search is resumed.
RESUMABLE_FIELDS = frozenset(
    {
        "num_trials",
        "num_workers",
        "trial_timeout_s",
        "work_dir",
        "max_consecutive_failures",
        "outputs_interval_s",
        "time_budget_s",
        # Where trials run does not change what they measure (latency_resource
        # does: it says which devices time the models, so it is not here).
        "executor",
        "ray_address",
        "trial_resources",
        "trial_retries",
        # How precisely latency is measured, not what: the backend and the
        # reference (latency.reference*) must stay.
        *(
            f"latency.{name}"
            for name in (
                "adaptive",
                "target_precision",
                "confidence",
                "min_rounds",
                "max_rounds",
                "max_measure_s",
                "remeasures",
                "ratio_precision",
            )
        ),
    }
)

# config.json keys of searches written before the restructure.
_LEGACY_LATENCY_KEYS = ("latency_backend", "latency_options", "latency_cache")


class SearchConfigError(ValueError):
    """A search cannot start or resume with this configuration."""


_TYPED_FIELDS = {
    "reward": RewardConfig,
    "data": DataConfig,
    "trainer": TrainerConfig,
    "latency": LatencyConfig,
    "shared": SharedConfig,
}


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search; written to ``config.json``.

    ``controller`` defaults to ``ControllerConfig(seed=seed)``. ``latency``
    records how the latency backend was configured (the backend itself is
    passed to ``Search``), so a resume with another backend is refused.
    ``max_consecutive_failures``: the search stops after this many failed
    trials in a row (a dead backend would otherwise fail every trial); None
    never stops. ``evaluation``: one of ``EVALUATIONS``; ``"shared"`` samples
    ``num_trials`` paths of a supernet (``shared`` holds its settings), scores
    latency from the lookup table (``latency_mode`` predicted or verified) and
    trains the best ``top_k`` architectures standalone at the end;
    ``time_budget_s`` (shared only) stops the sampling after that many seconds
    of this run (the schedules still span ``num_trials``), then verifies.
    ``outputs_interval_s``: ``best.json`` and ``pareto.png`` are rewritten at
    most this often while the search runs (each costs a Pareto plot, 0.2-0.5 s
    on two cores), and always at its end; the journal holds every result as it
    comes, so nothing is lost in between. ``checkpoint_every_updates``: the
    controller is checkpointed after every this many policy updates and at the
    end of the search; a resume replays the journal written since the
    checkpoint (``mnas.search.oracle``), so no value loses anything, and a
    larger one spares the driver a save per update.

    ``executor``: ``local`` (worker subprocesses of this machine) or ``ray``
    (Ray tasks on the cluster at ``ray_address``; None: Ray's default, a
    cluster named by ``RAY_ADDRESS`` or a fresh one on this machine). Each Ray
    trial asks for ``trial_resources`` (``{"CPU": 1}``; ``GPU``, custom
    resources) and is retried ``trial_retries`` times after losing its node or
    worker. ``latency_resource`` names the Ray resource of the devices that
    time the models (phones, quiet hosts); None times them in this process.
    """

    work_dir: str
    num_trials: int = 16
    num_workers: int = 1
    space: str = "mnasnet"
    controller_kind: str = "reinforce"
    controller: ControllerConfig | None = None
    reward: RewardConfig = RewardConfig()
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    deployment_resolution: int = 224
    latency: LatencyConfig = dataclasses.field(default_factory=LatencyConfig)
    latency_mode: str = "measured"
    lut_path: str | None = None
    top_k: int = 3
    trial_timeout_s: float = 3600.0
    max_consecutive_failures: int | None = 5
    seed: int = 0
    evaluation: str = "standalone"
    shared: SharedConfig = SharedConfig()
    time_budget_s: float | None = None
    outputs_interval_s: float = 15.0
    checkpoint_every_updates: int = 10
    executor: str = "local"
    ray_address: str | None = None
    trial_resources: Mapping[str, float] | tuple[tuple[str, float], ...] = (
        ("CPU", 1.0),
    )
    trial_retries: int = 2
    latency_resource: str | None = None

    def __post_init__(self) -> None:
        if self.controller is None:
            object.__setattr__(self, "controller", ControllerConfig(seed=self.seed))
        for name, kind in {**_TYPED_FIELDS, "controller": ControllerConfig}.items():
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise SearchConfigError(
                    f"{name} must be a {kind.__name__}, got {type(value).__name__}"
                )
        if self.num_trials < 1:
            raise SearchConfigError(f"num_trials must be >= 1, got {self.num_trials}")
        if self.num_workers < 1:
            raise SearchConfigError(f"num_workers must be >= 1, got {self.num_workers}")
        if self.controller_kind not in CONTROLLER_KINDS:
            raise SearchConfigError(
                f"controller_kind must be one of {', '.join(CONTROLLER_KINDS)}, "
                f"got {self.controller_kind!r}"
            )
        if self.deployment_resolution < 32:
            raise SearchConfigError(
                f"deployment_resolution must be >= 32, got {self.deployment_resolution}"
            )
        if self.top_k < 1:
            raise SearchConfigError(f"top_k must be >= 1, got {self.top_k}")
        if not self.trial_timeout_s > 0:
            raise SearchConfigError(
                f"trial_timeout_s must be > 0, got {self.trial_timeout_s}"
            )
        if (
            self.max_consecutive_failures is not None
            and self.max_consecutive_failures < 1
        ):
            raise SearchConfigError(
                "max_consecutive_failures must be >= 1 (or None: never stop), "
                f"got {self.max_consecutive_failures}"
            )
        if self.latency_mode not in LATENCY_MODES:
            raise SearchConfigError(
                f"latency mode must be one of {', '.join(LATENCY_MODES)}, "
                f"got {self.latency_mode!r}"
            )
        if self.evaluation not in EVALUATIONS:
            raise SearchConfigError(
                f"evaluation must be one of {', '.join(EVALUATIONS)}, "
                f"got {self.evaluation!r}"
            )
        if self.evaluation == "shared" and self.latency_mode == "measured":
            raise SearchConfigError(
                "--evaluation=shared scores latency from the lookup table: use "
                "--latency=verified (the top-k are also measured) or predicted"
            )
        if self.time_budget_s is not None:
            if self.evaluation != "shared":
                raise SearchConfigError(
                    f"time_budget_s needs evaluation 'shared' (got {self.evaluation!r})"
                )
            if not (math.isfinite(self.time_budget_s) and self.time_budget_s > 0):
                raise SearchConfigError(
                    f"time_budget_s must be a finite number > 0, got "
                    f"{self.time_budget_s!r}"
                )
        if not (
            math.isfinite(self.outputs_interval_s) and self.outputs_interval_s >= 0
        ):
            raise SearchConfigError(
                "outputs_interval_s must be a finite number >= 0, got "
                f"{self.outputs_interval_s!r}"
            )
        check_int(
            "checkpoint_every_updates",
            self.checkpoint_every_updates,
            1,
            error=SearchConfigError,
        )
        if self.latency_mode != "measured" and not self.lut_path:
            raise SearchConfigError(
                f"--latency={self.latency_mode} needs a lookup table (--lut); build "
                "one with `mnas-latency --build_lut`"
            )
        self._check_executor()
        self._check_ratio()

    def _check_ratio(self) -> None:
        """A reward on the latency ratio needs a reference timed with every
        candidate, which only measured latency has."""
        if self.reward.target_ratio is None:
            return
        if self.latency_mode != "measured":
            raise SearchConfigError(
                "a target ratio needs latency mode 'measured' (the lookup table "
                f"predicts ms, not a ratio), got {self.latency_mode!r}"
            )
        if self.latency.reference is None:
            raise SearchConfigError(
                "a target ratio needs a reference model (latency.reference)"
            )

    def _check_executor(self) -> None:
        object.__setattr__(
            self, "trial_resources", normalize_resources(self.trial_resources)
        )
        if self.executor not in EXECUTORS:
            raise SearchConfigError(
                f"executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}"
            )
        if not 0 <= self.trial_retries <= MAX_TRIAL_RETRIES:
            raise SearchConfigError(
                f"trial_retries must be in [0, {MAX_TRIAL_RETRIES}], "
                f"got {self.trial_retries}"
            )
        if self.executor != "ray":
            for name in ("ray_address", "latency_resource"):
                if getattr(self, name):
                    raise SearchConfigError(
                        f"{name} needs executor 'ray' (got {self.executor!r})"
                    )
        if self.latency_resource is not None and not self.latency_resource.strip():
            raise SearchConfigError("latency_resource must not be empty")
        if self.latency_resource and self.latency.serials:
            raise SearchConfigError(
                "latency.serials names phones of this machine; with "
                "latency_resource the cluster's phone resources name them"
            )

    @property
    def trial_resource_dict(self) -> dict[str, float]:
        """``trial_resources`` as ``{name: amount}``."""
        return dict(self.trial_resources)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form written to ``config.json``."""
        data = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in {*_TYPED_FIELDS, "controller"}
        }
        data["controller"] = self.controller.to_dict()
        data["reward"] = dataclasses.asdict(self.reward)
        data["data"] = dataclasses.asdict(self.data)
        data["trainer"] = dataclasses.asdict(self.trainer)
        data["latency"] = self.latency.to_dict()
        data["shared"] = self.shared.to_dict()
        data["trial_resources"] = self.trial_resource_dict
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchConfig:
        """Reads ``config.json`` (today's form or the pre-restructure one)."""
        values = upgrade_config_dict(data)
        check_fields(
            cls, sorted(values), "search config fields", error=SearchConfigError
        )
        seed = values.get("seed", 0)
        values["controller"] = ControllerConfig.from_dict(
            {"seed": seed, **(values.get("controller") or {})}
        )
        values["reward"] = RewardConfig(**(values.get("reward") or {}))
        values["data"] = DataConfig(**(values.get("data") or {}))
        values["trainer"] = TrainerConfig(**(values.get("trainer") or {}))
        values["latency"] = LatencyConfig.from_dict(values.get("latency") or {})
        values["shared"] = SharedConfig.from_dict(values.get("shared") or {})
        return cls(**values)


def normalize_resources(
    resources: Mapping[str, float] | Sequence[Sequence[Any]],
) -> tuple[tuple[str, float], ...]:
    """Resource amounts as sorted ``(name, amount)`` pairs (hashable, one
    spelling per meaning); SearchConfigError naming a bad name or amount.

    Ray's own names are ``CPU``, ``GPU`` and ``memory`` (bytes); any other
    name is a custom resource a node declared (``ray start --resources``).
    """
    pairs = resources.items() if isinstance(resources, Mapping) else resources
    found: dict[str, float] = {}
    for pair in pairs:
        name, amount = pair
        name = str(name).strip()
        if not name:
            raise SearchConfigError("trial_resources holds an empty resource name")
        if name in found:
            raise SearchConfigError(f"trial_resources names {name} twice")
        try:
            value = float(amount)
        except (TypeError, ValueError):
            raise SearchConfigError(
                f"trial_resources: {name} must be a number, got {amount!r}"
            ) from None
        if not (math.isfinite(value) and value >= 0):
            raise SearchConfigError(
                f"trial_resources: {name} must be finite and >= 0, got {amount}"
            )
        found[name] = value
    if not any(found.values()):
        raise SearchConfigError(
            "trial_resources must ask for some resource (e.g. CPU=1): a trial "
            "that needs nothing would be started without limit"
        )
    return tuple(sorted(found.items()))


def upgrade_config_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """A pre-restructure ``config.json`` dict in today's shape (still untyped).

    Then the search kept the latency backend as ``latency_backend``,
    ``latency_options`` (the ``LatencyConfig`` dict the binary was given, or
    empty) and ``latency_cache``; today they are one ``latency`` entry. Its
    ``data`` and ``trainer`` dicts held only what was set, so the fields it
    is silent on take today's defaults (the proxy recipe of docs/proxy.md):
    resumed by today's binary with the flags that began it, the search
    trains its remaining trials with today's recipe.
    """
    values = dict(data)
    if "latency" not in values and any(k in values for k in _LEGACY_LATENCY_KEYS):
        backend = values.pop("latency_backend", "host")
        options = values.pop("latency_options", None) or {}
        cache = values.pop("latency_cache", None)
        latency = (
            dict(options) if options else {"backend": backend, "cache_path": cache}
        )
        values["latency"] = latency
    return values


def search_claim(config: SearchConfig, resume: bool) -> dict[str, Any]:
    """The arguments of ``mnas.io.work_dir.claim_work_dir`` for a search: its
    resumable fields, its error, its journal as the state file and the
    pre-restructure upgrade."""
    return dict(
        work_dir=config.work_dir,
        config=config.to_dict(),
        resume=resume,
        resumable=RESUMABLE_FIELDS,
        error=SearchConfigError,
        state_file=JOURNAL_FILE,
        upgrade=canonical_config_dict,
    )


def check_search_work_dir(config: SearchConfig, resume: bool) -> None:
    """Refuses, before anything is claimed or loaded, a work directory the
    search's claim would refuse: one holding another search, a resume
    without ``--resume``, a resume whose config differs (listed)."""
    check_claim(**search_claim(config, resume))


def canonical_config_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """Any saved form, through the typed config, as ``to_dict`` writes it today
    (so a resume compares meanings, not spellings)."""
    return SearchConfig.from_dict(data).to_dict()
