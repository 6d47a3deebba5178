"""mnas-scale: EfficientNet compound scaling of an architecture.

Examples::

  mnas-scale --arch=mnasnet-a1 --phi=0,1,2,3
  mnas-scale --arch=runs/search/best.json --phi=0,1,2 --export_dir=family
  mnas-scale --arch=mnasnet-small --grid_search --output_dir=scale_out
  mnas-scale --arch=mnasnet-small --grid_search --target_ms=5 --output_dir=out

Family mode scales --arch by each --phi with (--alpha, --beta, --gamma) and
prints phi, resolution, multipliers, dropout, parameters, multiply-adds and
the latency of each member (batch 1 at its own resolution) on the latency
backend (host LiteRT by default; --nolatency skips it). --export_dir writes
each member as <name>.tflite.

--grid_search trains phi = 1 scalings of --arch for each triple (--triples,
or the whole grid with --grid_step) on the proxy task and ranks them by
accuracy, or by the MnasNet reward when --target_ms is given; the table and
the chosen triple are printed and written to --output_dir/scaling_search.json.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time

from absl import app, flags

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.flags.latency import (
    define_latency_flags,
    latency_config_from_flags,
    quiet_tensorflow,
)
from mnas.io.atomic import write_bytes_atomic
from mnas.latency.config import backend_from_config
from mnas.search_space import SpecError
from mnas.search_space.scaling import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    DEFAULT_GAMMA,
    DEFAULT_TOLERANCE,
    scale,
)

define_arch_flags(default_arch=None)
define_latency_flags()
flags.DEFINE_list("phi", ["0", "1", "2", "3"], "Compound coefficients, >= 0.")
flags.DEFINE_float("alpha", DEFAULT_ALPHA, "Depth factor per unit of phi.")
flags.DEFINE_float("beta", DEFAULT_BETA, "Width factor per unit of phi.")
flags.DEFINE_float("gamma", DEFAULT_GAMMA, "Resolution factor per unit of phi.")
flags.DEFINE_float(
    "tolerance",
    DEFAULT_TOLERANCE,
    "Allowed |alpha * beta^2 * gamma^2 - 2| (the published triple gives 1.92).",
)
flags.DEFINE_bool("latency", True, "Family mode: measure each member's latency.")
flags.DEFINE_string("export_dir", None, "Family mode: write <name>.tflite here.")
flags.DEFINE_bool("grid_search", False, "Search (alpha, beta, gamma) at phi = 1.")
flags.DEFINE_list(
    "triples",
    [],
    "Grid search: alpha:beta:gamma triples; default: five spread over the "
    "constraint (mnas.scaling.grid.DEFAULT_TRIPLES).",
)
flags.DEFINE_float(
    "grid_step",
    None,
    "Grid search: instead of --triples, every triple on the grid 1.0, "
    "1.0 + step, ..., --grid_max within --tolerance.",
)
flags.DEFINE_float("grid_max", 1.6, "Grid search: largest grid value.")
flags.DEFINE_float(
    "target_ms",
    None,
    "Grid search: score by the MnasNet reward at this latency target "
    "(measured at the deployment resolution) instead of accuracy.",
)
flags.DEFINE_string("dataset", "digits", "Grid search: proxy dataset.")
flags.DEFINE_string("data_dir", None, "Grid search: TFDS data dir.")
flags.DEFINE_integer("proxy_resolution", 32, "Grid search: base proxy resolution.")
flags.DEFINE_integer("epochs", 4, "Grid search: proxy training epochs.")
flags.DEFINE_integer("batch_size", 16, "Grid search: proxy batch size.")
flags.DEFINE_integer(
    "max_train_examples", None, "Grid search: cap on training examples."
)
flags.DEFINE_integer("seed", 0, "Grid search: data split and weight seed.")
flags.DEFINE_string("output_dir", None, "Grid search: write scaling_search.json here.")
FLAGS = flags.FLAGS


def _phis() -> list[float]:
    phis = []
    for text in FLAGS.phi:
        try:
            value = float(text)
        except ValueError:
            raise app.UsageError(
                f"--phi values must be numbers, got {text!r}"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise app.UsageError(f"--phi values must be >= 0, got {text!r}")
        phis.append(int(value) if value.is_integer() else value)
    if not phis:
        raise app.UsageError("--phi needs at least one value")
    return phis


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        spec = arch_from_flags(FLAGS)
        config = latency_config_from_flags(FLAGS)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    for name in ("output_dir", "export_dir"):
        path = getattr(FLAGS, name)
        if path and os.path.exists(path) and not os.path.isdir(path):
            raise app.UsageError(f"--{name} is not a folder: {path}")
    quiet_tensorflow(FLAGS)
    if FLAGS.grid_search:
        return _grid_search(spec, config)
    return _family(spec, config)


def _family(spec, config) -> int:
    from mnas.io.tables import format_table
    from mnas.model.cost import compute_stats

    phis = _phis()
    try:
        family = [
            scale(spec, phi, FLAGS.alpha, FLAGS.beta, FLAGS.gamma, FLAGS.tolerance)
            for phi in phis
        ]
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    backend = None
    if FLAGS.latency:
        try:
            backend = backend_from_config(config)
        except ValueError as error:
            raise app.UsageError(str(error)) from None
    print(
        f"compound scaling of {spec.name}: alpha={FLAGS.alpha:g} "
        f"beta={FLAGS.beta:g} gamma={FLAGS.gamma:g} "
        f"(alpha*beta^2*gamma^2 = {FLAGS.alpha * FLAGS.beta**2 * FLAGS.gamma**2:.4f})"
    )
    if backend is not None:
        print(f"latency: {backend.describe()}, median of timed runs, batch 1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnas-scale-") as scratch:
        folder = FLAGS.export_dir or scratch
        os.makedirs(folder, exist_ok=True)
        for phi, member in zip(phis, family):
            stats = compute_stats(member, num_classes=FLAGS.num_classes)
            latency = "-"
            if backend is not None or FLAGS.export_dir:
                path = _export(member, folder)
                if backend is not None:
                    latency = backend.measure(path).median_ms
            rows.append(
                [
                    f"{phi:g}",
                    member.name,
                    member.resolution,
                    round(member.width_multiplier, 4),
                    round(member.depth_multiplier, 4),
                    member.dropout_rate,
                    stats.params,
                    stats.macs,
                    latency,
                ]
            )
    print(
        format_table(
            [
                "phi",
                "name",
                "resolution",
                "width",
                "depth",
                "dropout",
                "params",
                "MACs",
                "latency ms",
            ],
            rows,
        )
    )
    if FLAGS.export_dir:
        print(f"exported {len(family)} models to {FLAGS.export_dir}")
    return 0


def _export(member, folder: str) -> str:
    import keras

    from mnas.latency.export import export_tflite
    from mnas.model.builder import build_model

    res = member.resolution
    model = build_model(member, (res, res, 3), FLAGS.num_classes)
    path = os.path.join(folder, f"{member.name}.tflite")
    write_bytes_atomic(path, export_tflite(model))
    keras.backend.clear_session()
    return path


def _grid_search(spec, latency_config) -> int:
    from mnas.scaling.grid import (
        DEFAULT_TRIPLES,
        ScalingSearchConfig,
        grid_triples,
        parse_triples,
        run_scaling_search,
    )
    from mnas.search.reward import RewardConfig
    from mnas.train.data import DataConfig, DataError
    from mnas.train.proxy import TrainerConfig

    try:
        if FLAGS.grid_step is not None:
            if FLAGS.triples:
                raise SpecError("give --triples or --grid_step, not both")
            triples = tuple(
                grid_triples(FLAGS.grid_step, 1.0, FLAGS.grid_max, FLAGS.tolerance)
            )
        elif FLAGS.triples:
            triples = parse_triples(FLAGS.triples)
        else:
            triples = DEFAULT_TRIPLES
        reward = None
        if FLAGS.target_ms is not None:
            reward = RewardConfig(target_ms=FLAGS.target_ms)
        for name in ("epochs", "batch_size", "proxy_resolution"):
            if getattr(FLAGS, name) < 1:
                raise SpecError(f"--{name} must be >= 1, got {getattr(FLAGS, name)}")
        config = ScalingSearchConfig(
            triples=triples,
            tolerance=FLAGS.tolerance,
            data=DataConfig(
                dataset=FLAGS.dataset,
                data_dir=FLAGS.data_dir,
                resolution=FLAGS.proxy_resolution,
                batch_size=FLAGS.batch_size,
                seed=FLAGS.seed,
                max_train_examples=FLAGS.max_train_examples,
            ),
            trainer=TrainerConfig(epochs=FLAGS.epochs, seed=FLAGS.seed),
            reward=reward,
            seed=FLAGS.seed,
        )
        backend = backend_from_config(latency_config) if reward else None
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    print(
        f"grid search of (alpha, beta, gamma) at phi=1 on {spec.name}: "
        f"{len(config.triples)} triples, {config.data.dataset} at "
        f"{config.data.resolution}px x gamma, {config.trainer.epochs} epochs, "
        f"score = {'reward (target ' + str(FLAGS.target_ms) + ' ms)' if reward else 'accuracy'}"
    )
    start = time.perf_counter()
    try:
        result = run_scaling_search(
            spec, config, backend, progress=lambda line: print(line, flush=True)
        )
    except DataError as error:
        raise app.UsageError(str(error)) from None
    print(result.table())
    chosen = result.chosen
    if chosen is None:
        print("no triple trained successfully", file=sys.stderr)
        return 1
    print(
        f"chosen: alpha={chosen.alpha:g} beta={chosen.beta:g} gamma={chosen.gamma:g} "
        f"(score {chosen.score:.4f}); wall time {time.perf_counter() - start:.1f} s"
    )
    if FLAGS.output_dir:
        print(f"wrote {result.write(FLAGS.output_dir)}")
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
