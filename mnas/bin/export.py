"""mnas-export: write the .tflite files of an architecture (float and quantized).

Example::

  mnas-export --arch=mnasnet-a1 --output_dir=exports
  mnas-export --arch=best.json --output_dir=out --quantize=int8 \\
      --representative_dataset=digits

With trained weights, and the accuracy of each file next to the Keras model's::

  mnas-export --checkpoint=/ckpt/mnasnet-a1 --output_dir=out \
      --quantize=none,int8 --representative_dataset=eval \
      --eval_dataset=imagenet2012 --data_dir=... --eval_max_examples=1000

Writes ``<name>_float.tflite``, ``<name>_dynamic.tflite`` and
``<name>_int8.tflite`` (those asked for with --quantize), ``<name>.json``
(the architecture, block strings included) and ``config.json`` (this run's
settings) into --output_dir, and prints the file sizes.  Without a
checkpoint the weights are the builder's random initialization: right for
latency, meaningless for accuracy.  --checkpoint loads an mnas weights folder
or an official MnasNet checkpoint (then --arch is optional); --eval_dataset
scores the Keras model and every exported file on the same images (LiteRT
interpreter) and reports each file's top-1 agreement with the Keras model.
"""

from __future__ import annotations

import os
import time

from absl import app, flags

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.flags.evaluation import (
    define_checkpoint_flags,
    define_eval_data_flags,
    define_tfds_flags,
    eval_config_from_flags,
    load_checkpoint_from_flags,
)
from mnas.flags.latency import quiet_tensorflow
from mnas.io.atomic import write_bytes_atomic, write_json_atomic
from mnas.search_space import ArchSpec, SpecError

QUANTIZATIONS = ("none", "dynamic", "int8")
FILE_SUFFIX = {"none": "float", "dynamic": "dynamic", "int8": "int8"}
REPRESENTATIVE_DATASETS = ("random", "digits", "eval")

define_arch_flags(default_arch=None)
flags.DEFINE_string("output_dir", None, "Folder for the exported files.")
flags.DEFINE_list(
    "quantize",
    list(QUANTIZATIONS),
    "Comma list of exports: none (float32), dynamic (int8 weights, float "
    "activations), int8 (full-integer post-training quantization).",
)
flags.DEFINE_string(
    "name", None, "File name stem; default: the architecture's name (+ scaling)."
)
flags.DEFINE_enum(
    "representative_dataset",
    "random",
    list(REPRESENTATIVE_DATASETS),
    "int8 calibration data: 'random' (standard normal: fine for latency), "
    "'digits' (the embedded proxy dataset, resized to the export resolution) or "
    "'eval' (--eval_dataset's --calibration_split, preprocessed as for evaluation).",
)
flags.DEFINE_string(
    "calibration_split",
    "train",
    "Split of --eval_dataset for --representative_dataset=eval (a folder without "
    "that sub-folder uses the folder itself).",
)
flags.DEFINE_integer("num_calibration_samples", 100, "Samples for int8 calibration.")
define_checkpoint_flags()
define_eval_data_flags(prefix="eval_")
define_tfds_flags()
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    quantizations = _quantizations(FLAGS.quantize)
    if not FLAGS.output_dir:
        raise app.UsageError("--output_dir is required")
    if not FLAGS.arch and not FLAGS.checkpoint:
        raise app.UsageError(
            "--arch is required (a preset, block strings or an arch .json file) "
            "unless --checkpoint names its architecture"
        )
    if FLAGS.representative_dataset == "eval" and not FLAGS.eval_dataset:
        raise app.UsageError("--representative_dataset=eval needs --eval_dataset")
    if FLAGS.num_calibration_samples < 1:
        raise app.UsageError(
            f"--num_calibration_samples must be >= 1, got "
            f"{FLAGS.num_calibration_samples}"
        )
    try:
        spec = arch_from_flags(FLAGS) if FLAGS.arch else None
    except SpecError as error:
        raise app.UsageError(str(error)) from None
    if os.path.exists(FLAGS.output_dir) and not os.path.isdir(FLAGS.output_dir):
        raise app.UsageError(f"--output_dir is not a folder: {FLAGS.output_dir}")
    quiet_tensorflow(FLAGS)

    from mnas.latency.export import export_tflite
    from mnas.model.builder import build_model

    start = time.perf_counter()
    preprocessing = "mnas"
    loaded_from = None
    if FLAGS.checkpoint:
        model, spec, preprocessing, loaded_from = _load_checkpoint(spec)
    else:
        model = build_model(
            spec, (spec.resolution, spec.resolution, 3), num_classes=FLAGS.num_classes
        )
    stem = _file_stem(FLAGS.name or default_name(spec))
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    build_s = time.perf_counter() - start
    print(
        f"built {spec.name} at {spec.resolution}x{spec.resolution}, "
        f"{model.count_params():,} parameters, in {build_s:.1f} s"
    )
    if loaded_from:
        print(f"weights: {loaded_from}")
    eval_config = None
    if FLAGS.eval_dataset:
        eval_config = _eval_config(spec.resolution, preprocessing)

    representative = None
    if "int8" in quantizations and FLAGS.representative_dataset == "digits":
        representative = _digits_images(spec.resolution, FLAGS.num_calibration_samples)
    if "int8" in quantizations and FLAGS.representative_dataset == "eval":
        representative = _eval_images(eval_config, FLAGS.num_calibration_samples)

    rows = []
    written = {}
    flatbuffers = {}
    for quantization in quantizations:
        start = time.perf_counter()
        data = export_tflite(
            model,
            quantization=quantization,
            representative_data=representative if quantization == "int8" else None,
            num_calibration_samples=FLAGS.num_calibration_samples,
        )
        seconds = time.perf_counter() - start
        path = os.path.join(
            FLAGS.output_dir, f"{stem}_{FILE_SUFFIX[quantization]}.tflite"
        )
        write_bytes_atomic(path, data)
        written[quantization] = path
        flatbuffers[quantization] = data
        rows.append((quantization, os.path.basename(path), len(data), seconds))

    arch_path = os.path.join(FLAGS.output_dir, f"{stem}.json")
    write_json_atomic(arch_path, spec.to_dict())
    write_json_atomic(
        os.path.join(FLAGS.output_dir, "config.json"),
        {
            "binary": "mnas-export",
            "arch": spec.to_dict(),
            "name": stem,
            "num_classes": FLAGS.num_classes,
            "resolution": spec.resolution,
            "quantize": list(quantizations),
            "representative_dataset": FLAGS.representative_dataset,
            "num_calibration_samples": FLAGS.num_calibration_samples,
            "checkpoint": FLAGS.checkpoint,
            "loaded": loaded_from,
            "preprocessing": preprocessing,
            "eval": eval_config.to_dict() if eval_config else None,
            "files": {q: os.path.basename(p) for q, p in written.items()},
        },
    )
    print(_size_table(rows))
    print(f"architecture: {arch_path}")
    if eval_config is not None:
        results = _evaluate_exports(model, flatbuffers, written, eval_config)
        write_json_atomic(os.path.join(FLAGS.output_dir, "eval.json"), results)
    return 0


def _quantizations(values: list[str]) -> tuple[str, ...]:
    """Validated, de-duplicated --quantize list in the order given."""
    chosen: list[str] = []
    for value in values:
        value = value.strip().lower()
        if value == "float":
            value = "none"
        if value not in QUANTIZATIONS:
            raise app.UsageError(
                f"--quantize: unknown quantization {value!r}; choose from "
                f"{','.join(QUANTIZATIONS)}"
            )
        if value not in chosen:
            chosen.append(value)
    if not chosen:
        raise app.UsageError("--quantize is empty; choose from none,dynamic,int8")
    return tuple(chosen)


def default_name(spec: ArchSpec) -> str:
    """The spec's name, plus any scaling or non-default resolution."""
    name = spec.name
    if spec.width_multiplier != 1.0:
        name += f"_w{spec.width_multiplier:g}"
    if spec.depth_multiplier != 1.0:
        name += f"_d{spec.depth_multiplier:g}"
    if spec.resolution != 224:
        name += f"_r{spec.resolution}"
    return name


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def _load_checkpoint(spec):
    """Model, spec, input preprocessing and description from --checkpoint."""
    from mnas.model.official.checkpoint import CheckpointError
    from mnas.model.weights import WeightsError

    try:
        loaded = load_checkpoint_from_flags(FLAGS, spec)
    except (WeightsError, CheckpointError, SpecError) as error:
        raise app.UsageError(str(error)) from None
    return loaded.model, loaded.spec, loaded.preprocessing, loaded.description


def _eval_config(resolution: int, preprocessing: str):
    from mnas.train.data import DataError

    try:
        return eval_config_from_flags(FLAGS, resolution, preprocessing, prefix="eval_")
    except DataError as error:
        raise app.UsageError(str(error)) from None


def _eval_images(config, count: int):
    """Calibration images: --calibration_split of the eval data, preprocessed."""
    import dataclasses

    import numpy as np

    from mnas.train.evaluation import batches, open_source

    config = dataclasses.replace(
        config, split=FLAGS.calibration_split, max_examples=count
    )
    source = open_source(config)
    return np.concatenate([x for x, _ in batches(source, config).as_numpy_iterator()])


def _evaluate_exports(model, flatbuffers, written, config) -> dict:
    """Scores Keras and every export on the same images; prints a table."""
    from mnas.io.tables import format_table
    from mnas.train.evaluation import evaluate, keras_predictor, tflite_predictor

    reference, source = evaluate(keras_predictor(model), config)
    print(f"evaluated on {source.description}, {reference.num_examples} images:")
    rows = [("keras", round(reference.top1, 4), round(reference.top5, 4), "-")]
    results = {"source": source.description, "keras": reference.to_dict()}
    for quantization, data in flatbuffers.items():
        result, _ = evaluate(tflite_predictor(data), config)
        agreement = reference.agreement(result)
        name = os.path.basename(written[quantization])
        rows.append((name, round(result.top1, 4), round(result.top5, 4), agreement))
        results[quantization] = {**result.to_dict(), "agreement_with_keras": agreement}
    print(format_table(("model", "top-1", "top-5", "top-1 agreement with keras"), rows))
    return results


def _digits_images(resolution: int, count: int):
    from mnas.train.data import DataConfig, load_proxy_data

    data = load_proxy_data(
        DataConfig(
            dataset="digits",
            resolution=resolution,
            max_train_examples=count,
            max_eval_examples=1,
        )
    )
    return data.representative_images(count)


def _size_table(rows) -> str:
    from mnas.io.tables import format_table

    float_size = next((size for q, _, size, _ in rows if q == "none"), None)
    table_rows = []
    for quantization, name, size, seconds in rows:
        ratio = "-" if float_size is None else round(size / float_size, 3)
        table_rows.append(
            (name, quantization, size, round(size / 2**20, 2), ratio, round(seconds, 1))
        )
    return format_table(
        ("file", "quantization", "bytes", "MiB", "size / float", "export s"),
        table_rows,
    )


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
