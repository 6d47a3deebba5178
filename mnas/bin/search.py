"""mnas-search: platform-aware architecture search (MnasNet).

With no flags it searches the embedded default: scikit-learn's digits as the
proxy task, latency measured on this host with LiteRT (XNNPACK, 1 thread,
224x224, batch 1). ``--latency=predicted|verified`` scores latency with the
lookup table of ``mnas-latency --build_lut`` instead.
"""

import os
import sys

from absl import app, flags, logging

from mnas.flags.latency import (
    define_latency_flags,
    define_lut_flags,
    latency_config_from_flags,
    lut_path_from_flags,
)
from mnas.flags.search import define_search_flags, search_config_from_flags
from mnas.latency.config import backend_from_config, load_predictor, pool_from_config

define_search_flags()
define_latency_flags()
define_lut_flags()
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # checkpoint chatter would hide progress
    from mnas.latency.errors import LatencyError
    from mnas.search.display import best_table
    from mnas.search.runner import Search, SearchConfigError
    from mnas.search.workers.pool import SubprocessPool
    from mnas.search_space import get_search_space
    from mnas.train.data import DataConfig, DataError, load_proxy_data

    try:
        latency = latency_config_from_flags(FLAGS)
        lut_path = lut_path_from_flags(FLAGS, FLAGS.search_space)
        config = search_config_from_flags(
            FLAGS, latency.backend, latency.to_dict(), latency.cache_path, lut_path
        )
        predictor = None
        if config.latency_mode != "measured":
            predictor = load_predictor(
                latency, lut_path, get_search_space(config.space)
            )
        # Fail fast on a dataset no worker could load.
        data = load_proxy_data(DataConfig(**config.data))
        if len(latency.serials) > 1:
            backend = pool_from_config(latency)
        else:
            backend = backend_from_config(latency)
    except (ValueError, DataError, SearchConfigError, LatencyError) as error:
        raise app.UsageError(str(error)) from None
    if predictor is not None:
        from mnas.latency.lut.predictor import describe_calibration

        print(
            f"latency {config.latency_mode} from {lut_path} "
            f"({len(predictor.table)} entries; "
            f"{describe_calibration(predictor.calibration)})",
            flush=True,
        )
    print(
        f"mnas-search: {config.num_trials} trials, dataset {config.data['dataset']} "
        f"({data.num_train} train / {data.num_validation} held-out, {data.num_classes} "
        f"classes, {config.data['resolution']}px), latency on {latency.backend} at "
        f"{config.deployment_resolution}px, {config.reward.kind} reward, target "
        f"{config.reward.target_ms:g} ms, work dir {config.work_dir}",
        flush=True,
    )
    pool = SubprocessPool(
        "mnas.search.workers.candidate:evaluate_candidate",
        config.num_workers,
        os.path.join(config.work_dir, "workers"),
        trial_timeout_s=config.trial_timeout_s,
    )
    try:
        search = Search(config, pool, backend, resume=FLAGS.resume, predictor=predictor)
    except (ValueError, SearchConfigError) as error:
        pool.close()
        raise app.UsageError(str(error)) from None
    best = search.run()
    print()
    if not best:
        print(
            "no trial completed; see the errors in",
            os.path.join(config.work_dir, "trials.jsonl"),
        )
        return 1
    print(best_table(best))
    print(
        f"\nresults in {config.work_dir}: best.json, pareto.png, trials.jsonl, models/"
    )
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())
