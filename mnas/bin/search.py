"""mnas-search: platform-aware architecture search (MnasNet).

With no flags it searches the embedded default: scikit-learn's digits as the
proxy task, latency measured on this host with LiteRT (XNNPACK, 1 thread,
224x224, batch 1). ``--latency=predicted|verified`` scores latency with the
lookup table of ``mnas-latency --build_lut`` instead. ``--evaluation=shared``
scores candidates with the weights of one supernet trained along the search
(TuNAS) and trains only the top-k standalone (docs/shared_evaluation.md).

Everything the search needs (the flags, the lookup table, the dataset, the
work directory's config.json) is checked before the work directory is
claimed, so a fixed command line is never refused by a failed first try.
"""

import os
import sys

from absl import flags, logging

from mnas.flags.common import check_work_dir, run_binary
from mnas.flags.latency import define_latency_flags, latency_config_from_flags
from mnas.flags.lut import define_lut_flags, lut_path_from_flags
from mnas.flags.search import (
    RENAMED,
    define_search_flags,
    max_concurrent_trials,
    search_config_from_flags,
    shared_default,
)
from mnas.latency import describe_calibration, load_predictor
from mnas.search_space import get_search_space

define_search_flags()
define_latency_flags()
define_lut_flags()
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    del argv  # run_binary refuses positional arguments
    logging.set_verbosity(logging.WARNING)  # checkpoint chatter would hide progress
    from mnas.search import check_search_work_dir

    latency = latency_config_from_flags(FLAGS)
    lut_path = lut_path_from_flags(FLAGS, shared_default(FLAGS, "search_space"))
    config = search_config_from_flags(FLAGS, latency, lut_path)
    check_work_dir(config.work_dir)
    check_search_work_dir(config, FLAGS.resume)  # before TensorFlow loads
    from mnas.search import (
        CANDIDATE_TARGET,
        ConsecutiveFailuresError,
        Search,
        best_table,
        make_executor,
        make_latency_backend,
        open_shared_predictor,
        shared_space_note,
    )

    predictor = fill = None
    space = get_search_space(config.space)
    if config.evaluation == "shared":
        # A missing table is started and filled as the sampled paths need it.
        predictor, fill = open_shared_predictor(latency, lut_path, space)
        print(
            f"latency {config.latency_mode} from {lut_path} "
            f"({len(predictor.table)} entries"
            + (
                "; missing entries are measured as paths need them)"
                if fill.started
                else ")"
            ),
            flush=True,
        )
    elif config.latency_mode != "measured":
        predictor = load_predictor(latency, lut_path, space)
        print(
            f"latency {config.latency_mode} from {lut_path} "
            f"({len(predictor.table)} entries; "
            f"{describe_calibration(predictor.calibration)})",
            flush=True,
        )
    from mnas.train import load_proxy_data

    data = load_proxy_data(config.data)  # one no worker could load
    backend = make_latency_backend(config)
    if config.evaluation == "shared":
        budget = config.time_budget_s
        print(
            f"mnas-search --evaluation=shared: {config.num_trials} architectures"
            f" of the {space.name} space"
            + (f" (at most {budget:g} s)" if budget else "")
            + f", then the best {config.top_k} trained standalone",
            flush=True,
        )
        note = shared_space_note(space)
        if note:
            print(note, flush=True)
    print(
        f"mnas-search: {config.num_trials} trials, dataset {config.data.dataset} "
        f"({data.num_train} train / {data.num_validation} held-out, {data.num_classes} "
        f"classes, {config.data.resolution}px), latency on {latency.backend} at "
        f"{config.deployment_resolution}px, {config.reward.kind} reward, "
        f"{config.reward.describe_target()}, work dir {config.work_dir}",
        flush=True,
    )
    pool = make_executor(
        config,
        CANDIDATE_TARGET,
        os.path.join(config.work_dir, "workers"),
        max_concurrent=max_concurrent_trials(FLAGS),
    )
    try:
        search = Search(
            config,
            pool,
            backend,
            resume=FLAGS.resume,
            predictor=predictor,
            data=data,
            lut_fill=fill,
        )
    except BaseException:
        pool.close()
        raise
    try:
        best = search.run()
    except ConsecutiveFailuresError as error:
        print(f"\nmnas-search: {error}", file=sys.stderr, flush=True)
        return 1
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
    run_binary("mnas-search", main, RENAMED)


if __name__ == "__main__":
    sys.exit(run())
