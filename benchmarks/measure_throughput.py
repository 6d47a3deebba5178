"""Wall time per search candidate: build, convert and time at 224x224.

For MnasNet-A1 and ``--candidates`` architectures sampled (seeded) from the
MnasNet search space, all in one warm process, three ways to get a
candidate's ``.tflite`` and its latency:

* library path (what the search does today): ``build_model``, then
  ``mnas.latency.export.export_tflite`` (which hands the converter a
  ``tf.Module``, so TF lowers it through a SavedModel written to disk and
  read back), then the host backend with its benchmark_model-style defaults
  (>= 50 runs and >= 1 s, warm-up >= 0.5 s);
* no-SavedModel path: the same Keras model and inference function, handed
  to the converter as a bare concrete function (it freezes the variables in
  memory), timed with 20 runs after 2 warm-ups;
* direct path (a prototype, :func:`build_graphdef`): no Keras at all; the
  layer plan is written straight into a TF1 GraphDef with batch norm
  already folded (conv + bias) and random weights, converted with the
  GraphDef converter.  Its op multiset is checked against the library
  file's and the two files are timed interleaved (their median ratio).

The converter's phases are timed by wrapping TF internals (SavedModel round
trip, freezing, MLIR conversion proper, the post-conversion pass).  Also
timed: a cold ``import tensorflow, keras`` in a fresh process (the price
of a converter process per candidate), the flatbuffer object API
re-writing a whole model (a floor for emitting .tflite without any
converter), and the per-layer lookup-table route of issue 5: deriving a
candidate's layer keys, and building one table entry (one layer alone).

  python benchmarks/measure_throughput.py --candidates 4 --seed 0 --cpus 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from mnas.io import write_bytes_atomic

RESOLUTION = 224


@dataclass
class CandidateCost:
    """Seconds spent on one candidate, by step."""

    name: str
    macs: int
    steps: dict[str, float] = field(default_factory=dict)

    def total(self, *names: str) -> float:
        return sum(self.steps.get(n, 0.0) for n in names)


class PhaseTimer:
    """Accumulates wall time spent inside wrapped functions, by phase name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def wrapping(self, targets: Sequence[tuple[object, str, str]]) -> Iterator[None]:
        """Wraps ``owner.attr`` for each (owner, attr, phase) while active.

        Targets that this TensorFlow version lacks are skipped, so the
        breakdown degrades to "other" rather than failing.
        """
        originals = []
        for owner, attr, phase in targets:
            original = getattr(owner, attr, None)
            if original is None:
                continue
            originals.append((owner, attr, original))
            setattr(owner, attr, self._timed(original, phase))
        try:
            yield
        finally:
            for owner, attr, original in reversed(originals):
                setattr(owner, attr, original)

    def _timed(self, function: Callable, phase: str) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start

        return timed

    def take(self) -> dict[str, float]:
        out = dict(self.seconds)
        self.seconds.clear()
        return out


def converter_phases() -> list[tuple[object, str, str]]:
    """The TF converter internals worth timing (TF 2.21 names)."""
    from tensorflow.lite.python import lite

    return [
        (
            lite.TFLiteFrozenGraphConverterV2,
            "_convert_concrete_functions_to_saved_model",
            "savedmodel",
        ),
        (lite.TFLiteFrozenGraphConverterV2, "_freeze_concrete_function", "freeze"),
        (lite.TFLiteConverterBaseV2, "_optimize_tf_model", "grappler"),
        (lite, "_convert_saved_model", "mlir"),
        (lite, "_convert_graphdef", "mlir"),
        (lite.TFLiteConverterBaseV2, "_optimize_tflite_model", "post"),
    ]


def export_no_savedmodel(model) -> tuple[bytes, dict[str, float]]:
    """float32 .tflite from a bare concrete function (no SavedModel on disk).

    Same inference function and signature as ``export_tflite``; without a
    trackable object the converter freezes the captured variables itself.
    """
    import tensorflow as tf

    from mnas.latency.export import batch1_input_shape

    seconds = {}
    start = time.perf_counter()
    serve = tf.function(
        lambda x: model(x, training=False),
        input_signature=[
            tf.TensorSpec(batch1_input_shape(model), tf.float32, name="input")
        ],
    )
    concrete = serve.get_concrete_function()
    seconds["trace"] = time.perf_counter() - start
    start = time.perf_counter()
    data = bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())
    seconds["convert"] = time.perf_counter() - start
    return data, seconds


def build_graphdef(spec, resolution: int = RESOLUTION, num_classes: int = 1000):
    """Prototype: the spec as a TF1 GraphDef, batch norm pre-folded, no Keras.

    Mirrors ``mnas.model.builder`` layer for layer (stem, MBConv / dsconv /
    conv, squeeze-excite, identity and pooling skips, head, classifier)
    with each conv + batch norm written as conv + bias, the form the
    converter folds Keras' graph into.  Weights are random: float latency
    does not depend on their values.  Returns (graph_def, input, output).
    """
    import numpy as np
    import tensorflow as tf

    from mnas.model.plan import plan_layers

    rng = np.random.default_rng(0)
    act = {"relu": tf.nn.relu, "relu6": tf.nn.relu6, "swish": tf.nn.silu}[
        spec.activation
    ]
    graph = tf.Graph()
    with graph.as_default():

        def weight(*shape):
            values = rng.standard_normal(shape, dtype=np.float32) * 0.05
            return tf.constant(values)

        def conv(x, c_in, c_out, kernel, stride):
            x = tf.nn.conv2d(x, weight(kernel, kernel, c_in, c_out), stride, "SAME")
            return tf.nn.bias_add(x, weight(c_out))

        def squeeze_excite(x, channels, squeeze):
            s = tf.reduce_mean(x, [1, 2], keepdims=True)
            s = act(conv(s, channels, squeeze, 1, 1))
            return x * tf.sigmoid(conv(s, squeeze, channels, 1, 1))

        image = tf.compat.v1.placeholder(
            tf.float32, [1, resolution, resolution, 3], name="input"
        )
        x = act(conv(image, 3, spec.scaled_stem_filters(), 3, 2))
        for layer in plan_layers(spec, (resolution, resolution)):
            block, c_in, c_out = layer.block, layer.input_filters, layer.output_filters
            y = x
            if block.conv_op == "conv":
                y = act(conv(y, c_in, c_out, block.kernel_size, layer.stride))
                if block.has_se:
                    y = squeeze_excite(y, c_out, layer.se_filters)
            else:
                mid = layer.expanded_filters
                if block.conv_op == "mbconv" and block.expand_ratio != 1:
                    y = act(conv(y, c_in, mid, 1, 1))
                k, stride = block.kernel_size, layer.stride
                y = tf.nn.depthwise_conv2d(
                    y, weight(k, k, mid, 1), [1, stride, stride, 1], "SAME"
                )
                y = act(tf.nn.bias_add(y, weight(mid)))
                if block.has_se:
                    y = squeeze_excite(y, mid, layer.se_filters)
                y = conv(y, mid, c_out, 1, 1)
                if block.conv_op == "dsconv":
                    y = act(y)
            if layer.has_identity_skip:
                y = y + x
            elif layer.has_pool_skip:
                shortcut = x
                if layer.stride > 1:
                    shortcut = tf.nn.avg_pool2d(
                        shortcut, layer.stride, layer.stride, "SAME"
                    )
                if layer.pool_skip_projects:
                    shortcut = conv(shortcut, c_in, c_out, 1, 1)
                y = y + shortcut
            x = y
        head = spec.scaled_head_filters()
        x = act(conv(x, int(x.shape[-1]), head, 1, 1))
        x = tf.reduce_mean(x, [1, 2])
        logits = tf.nn.bias_add(
            tf.matmul(x, weight(head, num_classes)), weight(num_classes)
        )
        output = tf.nn.softmax(logits)
    return graph.as_graph_def(), image, output


def export_direct(spec, resolution: int = RESOLUTION) -> tuple[bytes, dict[str, float]]:
    """The direct path: :func:`build_graphdef`, then the GraphDef converter."""
    import tensorflow as tf

    seconds = {}
    start = time.perf_counter()
    graph_def, image, output = build_graphdef(spec, resolution)
    seconds["graph"] = time.perf_counter() - start
    start = time.perf_counter()
    converter = tf.compat.v1.lite.TFLiteConverter(graph_def, [image], [output])
    data = bytes(converter.convert())
    seconds["convert"] = time.perf_counter() - start
    return data, seconds


def same_ops(a: bytes, b: bytes) -> bool:
    """Whether two .tflite files hold the same multiset of ops."""
    from collections import Counter

    from mnas.latency.export import tflite_op_names

    return Counter(tflite_op_names(a)) == Counter(tflite_op_names(b))


def interleaved_ratio(
    path_a: str, path_b: str, cpus: Sequence[int] | None, rounds: int = 3
) -> tuple[float, float]:
    """Timed alternately: medians over rounds of b/a for the median run and
    for the fastest run (the steadier one on a loaded machine)."""
    from mnas.latency.backends.host import HostBackend

    backend = HostBackend(
        warmup_runs=2, warmup_min_secs=0.0, num_runs=20, min_secs=0.0, cpus=cpus
    )
    medians, fastest = [], []
    for _ in range(rounds):
        a = backend.measure(path_a)
        b = backend.measure(path_b)
        medians.append(b.median_ms / a.median_ms)
        fastest.append(b.min_ms / a.min_ms)
    return statistics.median(medians), statistics.median(fastest)


def flatbuffer_roundtrip_s(data: bytes) -> float:
    """Seconds to unpack and re-pack a .tflite with the flatbuffer object API."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    start = time.perf_counter()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = builder.Output()
    seconds = time.perf_counter() - start
    if len(out) < len(data) // 2:
        raise RuntimeError("flatbuffer round trip lost data")
    return seconds


def cold_import_s() -> float:
    """A fresh interpreter importing tensorflow and keras (what it prints)."""
    code = (
        "import time; t = time.perf_counter(); import tensorflow, keras; "
        "print(time.perf_counter() - t)"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def candidates(count: int, seed: int):
    """MnasNet-A1 then ``count`` seeded samples of the MnasNet space."""
    import numpy as np

    from mnas.search_space import MNASNET_SPACE, get_preset

    specs = [get_preset("mnasnet-a1")]
    rng = np.random.default_rng(seed)
    for i in range(count):
        spec = MNASNET_SPACE.decode(MNASNET_SPACE.sample(rng))
        specs.append(spec.replace(name=f"sample-{seed}-{i}"))
    return specs


def measure_candidate(
    spec,
    timer: PhaseTimer,
    cpus: Sequence[int] | None,
    folder: str,
    resolution: int = RESOLUTION,
) -> CandidateCost:
    """Every step of every path for one candidate."""
    import keras

    from mnas.latency.backends.host import HostBackend
    from mnas.latency.export import export_tflite
    from mnas.model.builder import build_model
    from mnas.model.cost import compute_stats
    from mnas.model.plan import plan_layers

    shape = (resolution, resolution, 3)
    cost = CandidateCost(spec.name, compute_stats(spec, shape, 1000).macs)
    steps = cost.steps

    keras.backend.clear_session()
    start = time.perf_counter()
    model = build_model(spec, shape)
    steps["build"] = time.perf_counter() - start

    timer.take()
    start = time.perf_counter()
    with timer.wrapping(converter_phases()):
        library = export_tflite(model)
    steps["export"] = time.perf_counter() - start
    steps.update({f"export.{k}": v for k, v in timer.take().items()})

    with timer.wrapping(converter_phases()):
        bare, seconds = export_no_savedmodel(model)
    steps.update({f"bare.{k}": v for k, v in seconds.items()})
    steps.update({f"bare.convert.{k}": v for k, v in timer.take().items()})
    if not same_ops(bare, library):
        raise RuntimeError(f"{spec.name}: the no-SavedModel file differs in ops")

    direct, seconds = export_direct(spec, resolution)
    steps.update({f"direct.{k}": v for k, v in seconds.items()})
    steps["direct.same_ops"] = float(same_ops(direct, library))

    steps["flatbuffer_write"] = flatbuffer_roundtrip_s(library)
    start = time.perf_counter()
    plan_layers(spec, (resolution, resolution))
    steps["lut_keys"] = time.perf_counter() - start

    library_path = os.path.join(folder, f"{spec.name}.tflite")
    direct_path = os.path.join(folder, f"{spec.name}-direct.tflite")
    for path, data in ((library_path, library), (direct_path, direct)):
        write_bytes_atomic(path, data)
    start = time.perf_counter()
    result = HostBackend(cpus=cpus).measure(library_path)
    steps["time"] = time.perf_counter() - start
    steps["median_ms"] = result.median_ms
    steps["runs"] = result.runs
    quick = HostBackend(
        warmup_runs=2, warmup_min_secs=0.0, num_runs=20, min_secs=0.0, cpus=cpus
    )
    start = time.perf_counter()
    quick.measure(library_path)
    steps["time_quick"] = time.perf_counter() - start
    ratios = interleaved_ratio(library_path, direct_path, cpus)
    steps["direct_over_library_ms"], steps["direct_over_library_min"] = ratios
    return cost


def measure_lut_entry(
    spec, layer_index: int, cpus: Sequence[int] | None, folder: str
) -> dict[str, object]:
    """Build, convert (no SavedModel) and time one layer alone: a table entry."""
    import keras

    from mnas.latency.backends.host import HostBackend
    from mnas.model.builder import build_layer  # the builder's own layer code
    from mnas.model.plan import plan_layers

    layer = plan_layers(spec, (RESOLUTION, RESOLUTION))[layer_index]
    keras.backend.clear_session()
    start = time.perf_counter()
    inputs = keras.Input((*layer.input_size, layer.input_filters))
    model = keras.Model(inputs, build_layer(spec, inputs, layer))
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    data, _ = export_no_savedmodel(model)
    convert_s = time.perf_counter() - start
    path = os.path.join(folder, f"layer{layer_index}.tflite")
    write_bytes_atomic(path, data)
    backend = HostBackend(
        warmup_runs=5, warmup_min_secs=0.0, num_runs=50, min_secs=0.0, cpus=cpus
    )
    start = time.perf_counter()
    result = backend.measure(path)
    return {
        "layer": layer.name,
        "shape": f"{layer.input_size[0]}x{layer.input_size[1]}x{layer.input_filters}",
        "build": build_s,
        "convert": convert_s,
        "time": time.perf_counter() - start,
        "median_ms": result.median_ms,
    }


def library_table(costs: Sequence[CandidateCost]) -> str:
    from mnas.io.tables import format_table

    rows = []
    for c in costs:
        s = c.steps
        known = c.total("export.savedmodel", "export.mlir", "export.post")
        rows.append(
            (
                c.name,
                round(c.macs / 1e6),
                s["build"],
                s["export"],
                s.get("export.savedmodel", 0.0),
                s.get("export.mlir", 0.0),
                s.get("export.post", 0.0),
                s["export"] - known,
                s["time"],
                int(s["runs"]),
                s["median_ms"],
                c.total("build", "export", "time"),
            )
        )
    rows.append(_mean_row(rows, "mean"))
    return format_table(
        (
            "candidate",
            "MMACs",
            "build",
            "export",
            "savedmodel",
            "mlir",
            "post",
            "trace+other",
            "time",
            "runs",
            "median ms",
            "total",
        ),
        rows,
    )


def alternatives_table(costs: Sequence[CandidateCost]) -> str:
    from mnas.io.tables import format_table

    rows = []
    for c in costs:
        s = c.steps
        rows.append(
            (
                c.name,
                s["bare.trace"],
                s["bare.convert"],
                s.get("bare.convert.freeze", 0.0),
                s.get("bare.convert.mlir", 0.0),
                c.total("build", "bare.trace", "bare.convert", "time_quick"),
                s["direct.graph"],
                s["direct.convert"],
                c.total("direct.graph", "direct.convert", "time_quick"),
                "yes" if s["direct.same_ops"] else "NO",
                s["direct_over_library_ms"],
                s["direct_over_library_min"],
                s["time_quick"],
                s["flatbuffer_write"],
                s["lut_keys"] * 1e3,
            )
        )
    rows.append(_mean_row(rows, "mean"))
    return format_table(
        (
            "candidate",
            "trace",
            "convert",
            "freeze",
            "mlir",
            "bare total",
            "graph",
            "convert",
            "direct total",
            "same ops",
            "ms ratio",
            "min ratio",
            "time(20)",
            "fb write",
            "LUT keys ms",
        ),
        rows,
    )


def _mean_row(rows: Sequence[tuple], label: str) -> tuple:
    out = [label]
    for column in list(zip(*rows))[1:]:
        if all(isinstance(v, int | float) for v in column):
            mean = statistics.fmean(column)
            out.append(round(mean) if all(isinstance(v, int) for v in column) else mean)
        else:
            out.append("")
    return tuple(out)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=4, help="random samples")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument(
        "--cpus", default=None, help="CPU list for timing (default: highest CPU)"
    )
    parser.add_argument(
        "--lut_layers",
        default="0,4,9,13",
        help="MnasNet-A1 layer indices to time as lookup-table entries ('' none)",
    )
    args = parser.parse_args(argv)
    if args.candidates < 0:
        parser.error("--candidates must be >= 0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from absl import logging

    from mnas.latency.backends.affinity import parse_cpu_list
    from mnas.latency.backends.sysinfo import (
        host_cpu_model,
        litert_version,
        package_version,
    )

    logging.set_verbosity(logging.ERROR)  # the converter's deprecation notices
    cpus = parse_cpu_list(args.cpus) if args.cpus else (max(os.sched_getaffinity(0)),)
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(
        f"cpu: {host_cpu_model()}, tensorflow {package_version('tensorflow')}, "
        f"{litert_version()}, timing pinned to CPUs {list(cpus)}"
    )
    print(f"load average before: {load_average()}")
    cold = cold_import_s()
    print(f"cold process: import tensorflow, keras took {cold:.1f} s")

    timer = PhaseTimer()
    costs = []
    lut = []
    with tempfile.TemporaryDirectory(prefix="mnas-throughput-") as folder:
        for spec in candidates(args.candidates, args.seed):
            costs.append(measure_candidate(spec, timer, cpus, folder))
            s = costs[-1].steps
            print(
                f"  {spec.name}: build {s['build']:.1f} s, export {s['export']:.1f}"
                f" s, bare convert {s['bare.convert']:.1f} s, direct "
                f"{s['direct.graph'] + s['direct.convert']:.1f} s, time "
                f"{s['time']:.1f} s; load {load_average()}",
                flush=True,
            )
        a1 = candidates(0, 0)[0]
        for index in [int(i) for i in args.lut_layers.split(",") if i.strip()]:
            lut.append(measure_lut_entry(a1, index, cpus, folder))
    print(f"load average after: {load_average()}")

    print()
    print(
        "Library path, seconds per candidate at "
        f"{RESOLUTION}x{RESOLUTION}: build_model, export_tflite (savedmodel = "
        "SavedModel write + read back, mlir = the converter proper, post = "
        "its flatbuffer post-pass, trace+other = the rest), time = host backend "
        "defaults (>= 50 runs and >= 1 s after >= 0.5 s warm-up). The first row "
        "also pays one-time start-up."
    )
    print(library_table(costs))
    print()
    print(
        "Alternatives, seconds: bare = same Keras model converted from a bare "
        "concrete function (total = build + trace + convert + time(20)); "
        "direct = GraphDef written from the layer plan without Keras (total = "
        "graph + convert + time(20)); ms ratio / min ratio = direct / library "
        "median / fastest run, 3 interleaved rounds; time(20) = 20 runs after 2 warm-ups; fb write = "
        "flatbuffer object API re-writing the model; LUT keys = deriving the "
        "per-layer lookup keys."
    )
    print(alternatives_table(costs))
    if lut:
        from mnas.io.tables import format_table

        print()
        print("One lookup-table entry (one MnasNet-A1 layer alone, bare path):")
        print(
            format_table(
                ("layer", "input", "build s", "convert s", "time s", "median ms"),
                [
                    (
                        e["layer"],
                        e["shape"],
                        e["build"],
                        e["convert"],
                        e["time"],
                        e["median_ms"],
                    )
                    for e in lut
                ],
            )
        )
    if len(costs) > 1:
        warm = costs[1:]

        def mean_total(*names: str) -> float:
            return statistics.fmean(c.total(*names) for c in warm)

        print()
        print(
            f"warm candidates (all but the first, n={len(warm)}): mean total "
            f"library {mean_total('build', 'export', 'time'):.2f} s, bare "
            f"{mean_total('build', 'bare.trace', 'bare.convert', 'time_quick'):.2f}"
            f" s, direct {mean_total('direct.graph', 'direct.convert', 'time_quick'):.2f} s"
        )
    print()
    print("command: python " + shlex.join([sys.argv[0], *(argv or sys.argv[1:])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
