"""The MnasNet search: oracle (controller + journal), runner, scoring, outputs.

Public entry points, imported lazily so that ``import mnas.search`` (flags,
``--help``) stays free of TensorFlow until one is used.
"""

from mnas.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "REWARD_KINDS": ".reward",
        "MAX_EXPONENT": ".reward",
        "RewardConfig": ".reward",
        "compute_reward": ".reward",
        "LATENCY_MODES": ".config",
        "SearchConfig": ".config",
        "SearchConfigError": ".config",
        "check_search_work_dir": ".config",
        "Search": ".runner",
        "SearchStoppedError": ".runner",
        "ConsecutiveFailuresError": ".runner",
        "JournalError": ".trial",
        "TrialRecord": ".trial",
        "best_table": ".display",
        "Executor": ".workers.pool",
        "InlinePool": ".workers.pool",
        "SubprocessPool": ".workers.pool",
        "CANDIDATE_TARGET": ".workers.candidate",
        "EXECUTORS": ".config",
        "EVALUATIONS": ".config",
        "SharedConfig": ".shared.config",
        "open_shared_predictor": ".shared.latency",
        "shared_space_note": ".shared.weights",
        "MixedPlatformError": ".scoring",
        "make_executor": ".workers.executors",
        "make_latency_backend": ".workers.executors",
        "RayExecutor": ".workers.ray_executor",
        "RayExecutorError": ".workers.ray_executor",
        "RayLatencyPool": ".workers.ray_latency",
    },
)
