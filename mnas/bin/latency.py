"""mnas-latency: time an architecture (or a .tflite file) on a latency backend.

Examples::

  mnas-latency --arch=mnasnet-a1
  mnas-latency --arch=mnasnet-a1 --quantize=int8 --cpus=1 --num_runs=100
  mnas-latency --tflite=model.tflite --latency_backend=litert-benchmark
  mnas-latency --arch=best.json --latency_backend=benchmark_model \\
      --benchmark_model=./benchmark_model --serial=R58M123,R58M456

Lookup-table predictor (per-layer latencies of one backend and search space)::

  mnas-latency --build_lut                 # measure every entry, then calibrate
  mnas-latency --predict --arch=mnasnet-a1 # per-layer breakdown and total
  mnas-latency --evaluate_predictor --num_archs=100  # measured vs predicted

Given an architecture it builds the Keras model (batch 1, 224x224 unless
--resolution says otherwise), exports it with the chosen quantization and
measures the file; given --tflite it measures that file as it is.  With
several --serial devices the file is measured once on each.  The devices are
reached (e.g. `adb devices`) before anything is exported.
"""

from __future__ import annotations

import os

from absl import flags

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.flags.common import FlagError, check_folder, quiet_tensorflow, run_binary
from mnas.flags.export import define_quantize_flag, quantization_from_flags
from mnas.flags.latency import (
    define_latency_flags,
    define_measure_flags,
    latency_config_from_flags,
)
from mnas.flags.lut import (
    define_lut_flags,
    define_lut_job_flags,
    lut_job_from_flags,
    lut_mode_from_flags,
)
from mnas.latency import (
    MeasureJob,
    backends_from_config,
    check_backends,
    run_lut_job,
    run_measure_job,
)

define_arch_flags()
define_latency_flags()
define_measure_flags()
define_quantize_flag()
define_lut_flags()
define_lut_job_flags()
FLAGS = flags.FLAGS

#: Flags that shape an architecture, meaningless for a given --tflite file.
ARCH_ONLY_FLAGS = ("quantize", "resolution", "width_multiplier", "depth_multiplier")


def main(argv: list[str]) -> int:
    del argv  # run_binary refuses positional arguments
    config = latency_config_from_flags(FLAGS)
    check_folder(FLAGS.output_dir, "output_dir")
    mode = lut_mode_from_flags(FLAGS)
    if mode is not None:
        if FLAGS.tflite:
            raise FlagError(f"--{mode} works on architectures, not on --tflite")
        spec = arch_from_flags(FLAGS, required=False) if mode == "predict" else None
        job = lut_job_from_flags(FLAGS, mode, spec)
        quiet_tensorflow(FLAGS)
        return run_lut_job(job, config)
    job = _measure_job()
    config = job.latency_config(config)  # the reference at the model's resolution
    quiet_tensorflow(FLAGS)
    backends = backends_from_config(config)
    check_backends(backends)
    return run_measure_job(job, config, backends)


def _measure_job() -> MeasureJob:
    if FLAGS.tflite and FLAGS.arch:
        raise FlagError("give either --arch or --tflite, not both")
    if FLAGS.tflite:
        if not os.path.isfile(FLAGS.tflite):
            raise FlagError(f"--tflite file not found: {FLAGS.tflite}")
        for name in ARCH_ONLY_FLAGS:
            if FLAGS[name].present:
                raise FlagError(f"--{name} applies to --arch, not to --tflite")
        return MeasureJob(
            tflite=FLAGS.tflite, repeats=FLAGS.repeats, output_dir=FLAGS.output_dir
        )
    spec = arch_from_flags(FLAGS, required=False)
    if spec is None:
        raise FlagError(
            "give --arch=<preset | block strings | arch.json> or --tflite=PATH"
        )
    return MeasureJob(
        spec=spec,
        quantization=quantization_from_flags(FLAGS),
        num_classes=FLAGS.num_classes,
        repeats=FLAGS.repeats,
        output_dir=FLAGS.output_dir,
    )


def run() -> None:
    run_binary("mnas-latency", main)


if __name__ == "__main__":
    run()
