"""mnas-scale: EfficientNet compound scaling of an architecture.

Examples::

  mnas-scale --arch=mnasnet-a1 --phi=0,1,2,3
  mnas-scale --arch=runs/search/best.json --phi=0,1,2 --export_dir=family
  mnas-scale --arch=mnasnet-small --grid_search --work_dir=runs/scale
  mnas-scale --arch=mnasnet-small --grid_search --target_ms=5 --work_dir=out
  mnas-scale --arch=mnasnet-small --grid_search --work_dir=out --resume

Family mode scales --arch by each --phi with the depth, width and resolution
coefficients (EfficientNet's alpha, beta, gamma) and prints phi, resolution,
multipliers, dropout, parameters, multiply-adds and the latency of each member
(batch 1 at its own resolution) on the latency backend (host LiteRT by
default; --nomeasure_latency skips it). --export_dir writes each member as
<name>.tflite.

--grid_search trains phi = 1 scalings of --arch for each coefficient triple
(--triples, or the whole grid with --grid_step) on the proxy task and ranks
them by accuracy, or by the MnasNet reward when --target_ms is given; the table
and the chosen triple are printed and written to
--work_dir (config.json, triples.jsonl, best.json, scaling_search.json;
--resume skips the triples already trained).
"""

from __future__ import annotations

import sys
import time

from absl import flags

from mnas.flags.arch import arch_from_flags
from mnas.flags.common import check_folder, quiet_tensorflow, run_binary
from mnas.flags.latency import latency_config_from_flags
from mnas.flags.scale import (
    RENAMED,
    coefficients_from_flags,
    define_scale_flags,
    phis_from_flags,
    scaling_search_config_from_flags,
)
from mnas.latency import backend_from_config, check_backends

define_scale_flags()
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    del argv  # run_binary refuses positional arguments
    spec = arch_from_flags(FLAGS)
    latency = latency_config_from_flags(FLAGS)
    check_folder(FLAGS.work_dir, "work_dir")
    check_folder(FLAGS.export_dir, "export_dir")
    if FLAGS.grid_search:
        return _grid_search(spec, latency)
    return _family(spec, latency)


def _family(spec, latency) -> int:
    phis = phis_from_flags(FLAGS)
    coefficients = coefficients_from_flags(FLAGS)
    quiet_tensorflow(FLAGS)
    from mnas.scaling import build_family, family_table

    backend = None
    if FLAGS.measure_latency:
        backend = backend_from_config(latency)
        check_backends([backend])
    a, b, g = coefficients.as_tuple()
    print(
        f"compound scaling of {spec.name}: depth alpha={a:g} width beta={b:g} "
        f"resolution gamma={g:g} (alpha*beta^2*gamma^2 = "
        f"{coefficients.flops_factor:.4f})"
    )
    if backend is not None:
        print(f"latency: {backend.describe()}, median of timed runs, batch 1")
    members = build_family(
        spec,
        phis,
        coefficients,
        FLAGS.tolerance,
        FLAGS.num_classes,
        backend,
        FLAGS.export_dir,
    )
    print(family_table(members))
    if FLAGS.export_dir:
        print(f"exported {len(members)} models to {FLAGS.export_dir}")
    return 0


def _grid_search(spec, latency) -> int:
    quiet_tensorflow(FLAGS)
    config = scaling_search_config_from_flags(FLAGS)  # checked before TF loads
    from mnas.scaling import run_scaling_search

    backend = None
    if config.reward is not None:
        backend = backend_from_config(latency)
        check_backends([backend])
    score = "accuracy"
    if config.reward is not None:
        score = f"reward (target {config.reward.target_ms:g} ms)"
    print(
        f"grid search of (alpha, beta, gamma) at phi=1 on {spec.name}: "
        f"{len(config.triples)} triples, {config.data.dataset} at "
        f"{config.data.resolution}px x gamma, {config.trainer.epochs} epochs, "
        f"score = {score}"
    )
    start = time.perf_counter()
    work_dir = FLAGS.work_dir or time.strftime("runs/scale-%Y%m%d-%H%M%S")
    result = run_scaling_search(
        spec,
        config,
        backend,
        progress=lambda line: print(line, flush=True),
        work_dir=work_dir,
        resume=FLAGS.resume,
    )
    print(result.table())
    chosen = result.chosen
    if chosen is None:
        print("mnas-scale: no triple trained successfully", file=sys.stderr)
        return 1
    print(
        f"chosen: alpha={chosen.alpha:g} beta={chosen.beta:g} gamma={chosen.gamma:g} "
        f"(score {chosen.score:.4f}); wall time {time.perf_counter() - start:.1f} s"
    )
    print(
        f"results in {work_dir}: scaling_search.json, best.json, triples.jsonl, "
        "config.json"
    )
    return 0


def run() -> None:
    run_binary("mnas-scale", main, RENAMED)


if __name__ == "__main__":
    run()
