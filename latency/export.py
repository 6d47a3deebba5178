"""Architecture or Keras model -> ``.tflite`` file, in the form a phone would run.

:func:`export_to_file` is the one build -> export -> atomic-write path of the
project (binaries, the search's workers, the DNAS and scaling loops, the
predictor's whole-model timing, benchmarks); :func:`export_tflite` is its
conversion step.

Latency must be measured on the graph that ships: inference mode, batch 1,
batch norm folded into the convolutions and activations fused.  Converting
a ``tf.function`` that calls ``model(x, training=False)`` with a fixed
batch-1 signature gives exactly that.  The model's variables are handed to
the converter as plain TF variables on a ``tf.Module`` so the converter can
freeze them; a Keras 3 model passed directly keeps them as resource
variables (VAR_HANDLE/READ_VARIABLE ops, unfolded batch norm, ~4x slower).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from mnas.io.atomic import write_bytes_atomic
from mnas.search_space import ArchSpec

if TYPE_CHECKING:
    import keras

Quantization = Literal["none", "dynamic", "int8"]
QUANTIZATIONS: tuple[str, ...] = ("none", "dynamic", "int8")
#: File-name suffix of each quantization (``<stem>_<suffix>.tflite``).
FILE_SUFFIXES = {"none": "float", "dynamic": "dynamic", "int8": "int8"}
DEFAULT_CALIBRATION_SAMPLES = 100
DEFAULT_NUM_CLASSES = 1000

# Substrings (upper case) of op names that must never reach an inference
# graph: training-mode batch norm, dropout/random ops, unfrozen variables.
_FORBIDDEN_OP_MARKERS = (
    "BATCHNORM",
    "BATCH_NORM",
    "DROPOUT",
    "RANDOM",
    "VAR_HANDLE",
    "READ_VARIABLE",
    "ASSIGN_VARIABLE",
)


def export_tflite(
    model: keras.Model,
    quantization: Quantization = "none",
    representative_data: Iterable[np.ndarray] | None = None,
    *,
    int8_io: bool = False,
    num_calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    seed: int = 0,
) -> bytes:
    """Converts a single-input Keras model to a batch-1 ``.tflite`` flatbuffer.

    Args:
      model: a built Keras model with a fully defined input shape (except
        the batch dimension).
      quantization: ``none`` (float32), ``dynamic`` (int8 weights, float
        activations) or ``int8`` (full-integer post-training quantization).
      representative_data: samples for int8 calibration, each shaped like
        one input with or without a leading batch axis (a batch is split
        into samples).  Defaults to ``num_calibration_samples`` standard
        normal samples: fine for latency, poor for accuracy.
      int8_io: with ``int8``, make the model's input and output int8 too
        (otherwise they stay float32 with quantize/dequantize at the ends).
      num_calibration_samples: at most this many samples are used.
      seed: seed for the default calibration samples.

    Raises:
      ValueError: bad arguments or an input shape that is not fixed.
      RuntimeError: the converted graph still holds training-only ops.
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}"
        )
    if int8_io and quantization != "int8":
        raise ValueError("int8_io needs quantization='int8'")
    if num_calibration_samples < 1:
        raise ValueError("num_calibration_samples must be >= 1")
    input_shape = batch1_input_shape(model)

    module = tf.Module()
    # Plain tf.Variables (not Keras wrappers) so the converter can freeze them.
    module.variables_to_freeze = [getattr(v, "value", v) for v in model.variables]
    module.serve = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec(input_shape, tf.float32, name="input")],
    )
    concrete = module.serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    # Skip the converter's temporary SavedModel round trip: same ops and
    # outputs, and a MnasNet-A1 export drops from about 5 s to 1.5-2.5 s.
    converter.experimental_lower_to_saved_model = False

    if quantization in ("dynamic", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "int8":
        samples = list(
            calibration_samples(
                input_shape, representative_data, num_calibration_samples, seed
            )
        )

        def representative_dataset() -> Iterator[list[np.ndarray]]:
            for sample in samples:
                yield [sample]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8

    flatbuffer = bytes(converter.convert())
    bad = training_ops(tflite_op_names(flatbuffer))
    if bad:
        raise RuntimeError(f"exported graph still has training-only ops: {bad}")
    return flatbuffer


@dataclasses.dataclass(frozen=True)
class ExportedFile:
    """A written ``.tflite`` file; ``flatbuffer`` is its content."""

    path: str
    quantization: str
    size_bytes: int
    seconds: float  # build (if any) + conversion + write
    flatbuffer: bytes = dataclasses.field(repr=False)


def export_to_file(
    source: ArchSpec | keras.Model,
    path: str,
    *,
    quantization: Quantization = "none",
    resolution: int | None = None,
    num_classes: int | None = None,
    weights_from: keras.Model | None = None,
    representative_data: Iterable[np.ndarray] | None = None,
    num_calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    seed: int = 0,
    clear_session: bool = False,
) -> ExportedFile:
    """Builds (for an ``ArchSpec``), converts and atomically writes ``path``.

    Args:
      source: an architecture, built here at batch 1, or a built Keras model
        exported as it is.
      path: the ``.tflite`` file; written via a ``.partial`` file and a
        rename, so a reader never sees half of it.
      quantization, representative_data, num_calibration_samples, seed: as
        in :func:`export_tflite`.
      resolution: input side of the built model (default: the spec's own).
      num_classes: classifier width (default: ``weights_from``'s, else 1000).
      weights_from: a model of the same architecture (e.g. trained at the
        proxy resolution) whose weights the built one takes; the network is
        fully convolutional up to global pooling, so they fit at any
        resolution.
      clear_session: reset Keras' global state before building (long loops
        that build many models).

    Raises:
      ValueError: resolution, num_classes or weights_from given with a
        model source, or anything :func:`export_tflite` refuses.
    """
    start = time.perf_counter()
    if isinstance(source, ArchSpec):
        model = _build(source, resolution, num_classes, weights_from, clear_session)
    else:
        given = [
            name
            for name, value in (
                ("resolution", resolution),
                ("num_classes", num_classes),
                ("weights_from", weights_from),
            )
            if value is not None
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} apply to an ArchSpec source, not to a model"
            )
        model = source
    flatbuffer = export_tflite(
        model,
        quantization,
        representative_data,
        num_calibration_samples=num_calibration_samples,
        seed=seed,
    )
    write_bytes_atomic(path, flatbuffer)
    return ExportedFile(
        path=str(path),
        quantization=quantization,
        size_bytes=len(flatbuffer),
        seconds=time.perf_counter() - start,
        flatbuffer=flatbuffer,
    )


def export_quantizations(
    model: keras.Model,
    folder: str,
    name: str,
    quantizations: Sequence[str] = QUANTIZATIONS,
    representative_data: Sequence[np.ndarray] | None = None,
    num_calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
) -> list[ExportedFile]:
    """``<name>_<float|dynamic|int8>.tflite`` in ``folder``, one per
    quantization (``representative_data`` calibrates int8 only)."""
    return [
        export_to_file(
            model,
            os.path.join(folder, tflite_file_name(name, quantization)),
            quantization=quantization,  # type: ignore[arg-type]
            representative_data=representative_data if quantization == "int8" else None,
            num_calibration_samples=num_calibration_samples,
        )
        for quantization in quantizations
    ]


def size_table(exported: Sequence[ExportedFile]) -> str:
    """File, quantization, size (and relative to the float file), seconds."""
    from mnas.io.tables import format_table

    float_size = next(
        (e.size_bytes for e in exported if e.quantization == "none"), None
    )
    rows = [
        (
            os.path.basename(e.path),
            e.quantization,
            e.size_bytes,
            round(e.size_bytes / 2**20, 2),
            "-" if float_size is None else round(e.size_bytes / float_size, 3),
            round(e.seconds, 1),
        )
        for e in exported
    ]
    return format_table(
        ("file", "quantization", "bytes", "MiB", "size / float", "export s"), rows
    )


def _build(
    spec: ArchSpec,
    resolution: int | None,
    num_classes: int | None,
    weights_from: keras.Model | None,
    clear_session: bool,
) -> keras.Model:
    import keras

    from mnas.model import build_model

    if clear_session:
        keras.backend.clear_session()
    if num_classes is None:
        num_classes = (
            DEFAULT_NUM_CLASSES
            if weights_from is None
            else int(weights_from.output_shape[-1])
        )
    side = spec.resolution if resolution is None else resolution
    model = build_model(spec, (side, side, 3), num_classes)
    if weights_from is not None:
        model.set_weights(weights_from.get_weights())
    return model


def file_stem(name: str) -> str:
    """``name`` with every character but letters, digits, ``-_.`` replaced."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def tflite_file_name(name: str, quantization: str | None = None) -> str:
    """``<stem>_<float|dynamic|int8>.tflite``, or ``<stem>.tflite`` without a
    quantization."""
    stem = file_stem(name)
    if quantization is None:
        return f"{stem}.tflite"
    if quantization not in FILE_SUFFIXES:
        raise ValueError(
            f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}"
        )
    return f"{stem}_{FILE_SUFFIXES[quantization]}.tflite"


def export_name(spec: ArchSpec) -> str:
    """The spec's name, plus any scaling or non-default resolution."""
    name = spec.name
    if spec.width_multiplier != 1.0:
        name += f"_w{spec.width_multiplier:g}"
    if spec.depth_multiplier != 1.0:
        name += f"_d{spec.depth_multiplier:g}"
    if spec.resolution != 224:
        name += f"_r{spec.resolution}"
    return name


def batch1_input_shape(model: keras.Model) -> list[int]:
    """``[1, H, W, C]`` from the model's single input; rejects unknown dims."""
    shape = model.input_shape
    if isinstance(shape, list):
        if len(shape) != 1:
            raise ValueError(
                f"export needs a single-input model, got {len(shape)} inputs"
            )
        shape = shape[0]
    dims = list(shape)[1:]
    if any(d is None for d in dims):
        raise ValueError(f"input shape must be fixed apart from batch, got {shape}")
    return [1, *(int(d) for d in dims)]


def calibration_samples(
    input_shape: Sequence[int],
    representative_data: Iterable[np.ndarray] | None,
    limit: int,
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Yields up to ``limit`` float32 samples shaped ``input_shape`` (batch 1)."""
    shape = tuple(input_shape)
    if representative_data is None:
        rng = np.random.default_rng(seed)
        for _ in range(limit):
            yield rng.standard_normal(shape).astype(np.float32)
        return

    def split(item: np.ndarray) -> Iterator[np.ndarray]:
        array = np.asarray(item, dtype=np.float32)
        if array.shape == shape[1:]:
            yield array[None, ...]
        elif array.ndim == len(shape) and array.shape[1:] == shape[1:]:
            for row in array:
                yield row[None, ...]
        else:
            raise ValueError(
                f"representative sample shape {array.shape} does not match "
                f"model input {shape}"
            )

    chained = itertools.chain.from_iterable(split(item) for item in representative_data)
    count = 0
    for sample in itertools.islice(chained, limit):
        count += 1
        yield sample
    if count == 0:
        raise ValueError("representative_data yielded no samples")


def tflite_op_names(flatbuffer: bytes) -> list[str]:
    """Op names of the primary subgraph in execution order (before delegation)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    return [op["op_name"] for op in interpreter._get_ops_details()]


def training_ops(op_names: Iterable[str]) -> list[str]:
    """The op names that have no place in an inference graph."""
    return [
        name
        for name in op_names
        if any(marker in name.upper() for marker in _FORBIDDEN_OP_MARKERS)
    ]
