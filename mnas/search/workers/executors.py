"""Which executor evaluates a search's candidates, and which devices time
them: chosen once, from the ``SearchConfig``.

Every part of a search that evaluates candidates standalone (the search
loop, and the top-k verification at the end of a one-shot search) should get
its executor here, so ``--executor=ray`` reaches all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mnas.search.config import SearchConfig
from mnas.search.workers.pool import Executor, SubprocessPool


def make_executor(
    config: SearchConfig,
    target: str,
    log_dir: str,
    max_concurrent: int | None = None,
    log: Callable[[str], None] = print,
) -> Executor:
    """``config.executor``'s executor running ``target`` (``module:function``).

    Local: ``config.num_workers`` worker subprocesses logging to ``log_dir``.
    Ray: tasks with ``config.trial_resources`` on the cluster at
    ``config.ray_address``, at most ``max_concurrent`` at once (None: as many
    as the cluster fits); Ray is imported only here.
    """
    if config.executor == "ray":
        from mnas.search.workers.ray_executor import RayExecutor, describe_resources

        executor = RayExecutor(
            target,
            config.trial_resource_dict,
            address=config.ray_address,
            trial_timeout_s=config.trial_timeout_s,
            trial_retries=config.trial_retries,
            max_concurrent=max_concurrent,
            log=log,
        )
        log(
            f"executor: Ray, {executor.capacity()} trial slots now "
            f"({describe_resources(executor.resources)} each), "
            f"{config.trial_retries} retries after a lost node or worker"
        )
        return executor
    return SubprocessPool(
        target, config.num_workers, log_dir, trial_timeout_s=config.trial_timeout_s
    )


def make_latency_backend(
    config: SearchConfig, log: Callable[[str], None] = print
) -> Any:
    """What times the search's models: the cluster's ``latency_resource``
    devices; else a device pool of this machine's phones (several
    ``--serial``); else one backend here. Each device is reached now, so a
    missing phone or binary fails before anything is trained."""
    latency = config.latency
    if config.latency_resource:
        from mnas.search.workers.ray_latency import RayLatencyPool

        pool = RayLatencyPool(
            latency, config.latency_resource, address=config.ray_address, log=log
        )
        log(f"latency: {pool.describe()}")
        return pool
    from mnas.latency import backend_from_config, check_backends, pool_from_config

    if len(latency.serials) > 1:
        pool = pool_from_config(latency)
        check_backends(pool.backends)
        return pool
    backend = backend_from_config(latency)
    check_backends([backend])
    return backend
