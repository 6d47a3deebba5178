"""mnas-export: write the .tflite files of an architecture (float and quantized).

Example::

  mnas-export --arch=mnasnet-a1 --output_dir=exports
  mnas-export --arch=best.json --output_dir=out --quantize=int8 \\
      --representative_dataset=digits

With trained weights, and the accuracy of each file next to the Keras model's::

  mnas-export --checkpoint=/ckpt/mnasnet-a1 --output_dir=out \\
      --quantize=none,int8 --representative_dataset=eval \\
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

import dataclasses
import os
import time

from absl import flags

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.flags.common import (
    FlagError,
    check_folder,
    define_output_dir_flag,
    quiet_tensorflow,
    run_binary,
)
from mnas.flags.eval import (
    define_checkpoint_flags,
    define_eval_data_flags,
    eval_config_from_flags,
    load_checkpoint_from_flags,
)
from mnas.flags.export import (
    check_calibration_flags,
    define_export_flags,
    quantizations_from_flags,
)
from mnas.io import format_table, write_json_atomic
from mnas.latency import export_name, export_quantizations, file_stem, size_table

define_arch_flags()
define_output_dir_flag()
define_export_flags()
define_checkpoint_flags()
define_eval_data_flags()
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    del argv  # run_binary refuses positional arguments
    quantizations = quantizations_from_flags(FLAGS)
    if not FLAGS.output_dir:
        raise FlagError("--output_dir is required")
    check_folder(FLAGS.output_dir, "output_dir")
    check_calibration_flags(FLAGS)
    spec = arch_from_flags(FLAGS, required=not FLAGS.checkpoint)
    quiet_tensorflow(FLAGS)
    start = time.perf_counter()
    preprocessing, loaded_from = "mnas", None
    if FLAGS.checkpoint:
        loaded = load_checkpoint_from_flags(FLAGS, spec)
        model, spec = loaded.model, loaded.spec
        preprocessing, loaded_from = loaded.preprocessing, loaded.description
    else:
        from mnas.model import build_model

        side = spec.resolution
        model = build_model(spec, (side, side, 3), num_classes=FLAGS.num_classes)
    print(
        f"built {spec.name} at {spec.resolution}x{spec.resolution}, "
        f"{model.count_params():,} parameters, in {time.perf_counter() - start:.1f} s"
    )
    if loaded_from:
        print(f"weights: {loaded_from}")
    eval_config = None
    if FLAGS.eval_dataset:
        eval_config = eval_config_from_flags(FLAGS, spec.resolution, preprocessing)
    stem = file_stem(FLAGS.name or export_name(spec))
    exported = export_quantizations(
        model,
        FLAGS.output_dir,
        stem,
        quantizations,
        _representative_images(quantizations, spec.resolution, eval_config),
        FLAGS.num_calibration_samples,
    )
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
            "files": {e.quantization: os.path.basename(e.path) for e in exported},
        },
    )
    print(size_table(exported))
    print(f"architecture: {arch_path}")
    if eval_config is not None:
        results = _evaluate_exports(model, exported, eval_config)
        write_json_atomic(os.path.join(FLAGS.output_dir, "eval.json"), results)
    return 0


def _representative_images(quantizations, resolution: int, eval_config):
    """int8 calibration images of --representative_dataset (None: random)."""
    if "int8" not in quantizations or FLAGS.representative_dataset == "random":
        return None
    import numpy as np

    from mnas.train import DataConfig, batches, load_proxy_data, open_source

    count = FLAGS.num_calibration_samples
    if FLAGS.representative_dataset == "digits":
        data = load_proxy_data(
            DataConfig(
                dataset="digits",
                resolution=resolution,
                max_train_examples=count,
                max_eval_examples=1,
            )
        )
        return data.representative_images(count)
    config = dataclasses.replace(
        eval_config, split=FLAGS.calibration_split, max_examples=count
    )
    source = open_source(config)
    return np.concatenate([x for x, _ in batches(source, config).as_numpy_iterator()])


def _evaluate_exports(model, exported, config) -> dict:
    """Scores Keras and every export on the same images; prints a table."""
    from mnas.train import evaluate, keras_predictor, tflite_predictor

    reference, source = evaluate(keras_predictor(model), config)
    print(f"evaluated on {source.description}, {reference.num_examples} images:")
    rows = [("keras", round(reference.top1, 4), round(reference.top5, 4), "-")]
    results = {"source": source.description, "keras": reference.to_dict()}
    for export in exported:
        result, _ = evaluate(tflite_predictor(export.flatbuffer), config)
        agreement = reference.agreement(result)
        name = os.path.basename(export.path)
        rows.append((name, round(result.top1, 4), round(result.top5, 4), agreement))
        results[export.quantization] = {
            **result.to_dict(),
            "agreement_with_keras": agreement,
        }
    print(format_table(("model", "top-1", "top-5", "top-1 agreement with keras"), rows))
    return results


def run() -> None:
    run_binary("mnas-export", main)


if __name__ == "__main__":
    run()
