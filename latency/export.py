"""Keras model -> ``.tflite`` bytes, in the form a phone would run.

Latency must be measured on the graph that ships: inference mode, batch 1,
batch norm folded into the convolutions and activations fused.  Converting
a ``tf.function`` that calls ``model(x, training=False)`` with a fixed
batch-1 signature gives exactly that.  The model's variables are handed to
the converter as plain TF variables on a ``tf.Module`` so the converter can
freeze them; a Keras 3 model passed directly keeps them as resource
variables (VAR_HANDLE/READ_VARIABLE ops, unfolded batch norm, ~4x slower).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import keras

Quantization = Literal["none", "dynamic", "int8"]
QUANTIZATIONS: tuple[str, ...] = ("none", "dynamic", "int8")
DEFAULT_CALIBRATION_SAMPLES = 100

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
