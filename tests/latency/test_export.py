"""Export produces the inference graph a phone would run, in every precision."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from mnas.latency.export import (
    batch1_input_shape,
    calibration_samples,
    export_tflite,
    tflite_op_names,
    training_ops,
)
from mnas.testing.latency_models import tiny_convnet, wide_convnet


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_convnet(input_size=32, width=16)


@pytest.fixture(scope="module")
def float_bytes(tiny_model):
    return export_tflite(tiny_model, "none")


def _run(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    y = interpreter.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def test_float_ops_are_folded_and_fused(float_bytes):
    ops = tflite_op_names(float_bytes)
    assert "CONV_2D" in ops
    assert "DEPTHWISE_CONV_2D" in ops
    assert training_ops(ops) == []
    # BN folded into the conv and ReLU fused: no standalone arithmetic left
    # between convolutions (the SE gate's MUL is the only multiply).
    assert ops.count("MUL") == 1
    for leftover in ("ADD", "SUB", "RSQRT", "RELU", "RELU6", "DIV"):
        assert leftover not in ops, ops


def test_float_input_is_batch_one(float_bytes):
    interpreter = Interpreter(model_content=float_bytes)
    details = interpreter.get_input_details()
    assert len(details) == 1
    assert list(details[0]["shape"]) == [1, 32, 32, 3]
    assert details[0]["dtype"] == np.float32


def test_float_output_matches_keras(tiny_model, float_bytes):
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.standard_normal((1, 32, 32, 3)).astype(np.float32)
        expected = np.asarray(tiny_model(x, training=False))
        got = _run(float_bytes, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_dynamic_loads_runs_and_stays_close(tiny_model):
    flatbuffer = export_tflite(tiny_model, "dynamic")
    assert training_ops(tflite_op_names(flatbuffer)) == []
    x = np.random.default_rng(2).standard_normal((1, 32, 32, 3)).astype(np.float32)
    got = _run(flatbuffer, x)
    expected = np.asarray(tiny_model(x, training=False))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, atol=0.1 * np.abs(expected).max())


@pytest.mark.parametrize("int8_io", [False, True])
def test_int8_is_full_integer_and_runs(tiny_model, int8_io):
    rng = np.random.default_rng(3)
    data = [rng.standard_normal((32, 32, 3)).astype(np.float32) for _ in range(8)]
    flatbuffer = export_tflite(tiny_model, "int8", data, int8_io=int8_io)
    interpreter = Interpreter(model_content=flatbuffer)
    io_dtype = np.int8 if int8_io else np.float32
    assert interpreter.get_input_details()[0]["dtype"] == io_dtype
    assert interpreter.get_output_details()[0]["dtype"] == io_dtype
    # Every conv is int8 inside the graph.
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convs = [
        op
        for op in interpreter._get_ops_details()
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
    ]
    assert convs
    for op in convs:
        assert tensors[op["inputs"][1]]["dtype"] == np.int8
    x = data[0][None]
    got = _run(flatbuffer, x)
    expected = np.asarray(tiny_model(x, training=False))
    assert got.shape == expected.shape
    assert np.all(np.isfinite(got))
    # Quantized logits should still correlate strongly with float logits.
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.9


def test_int8_size_is_about_a_quarter_of_float():
    model = wide_convnet(input_size=16, width=96)
    float_size = len(export_tflite(model, "none"))
    int8_size = len(export_tflite(model, "int8", num_calibration_samples=4))
    dynamic_size = len(export_tflite(model, "dynamic"))
    assert 0.2 < int8_size / float_size < 0.32
    assert 0.2 < dynamic_size / float_size < 0.32


def test_rejects_bad_arguments(tiny_model):
    with pytest.raises(ValueError, match="quantization"):
        export_tflite(tiny_model, "fp16")
    with pytest.raises(ValueError, match="int8_io"):
        export_tflite(tiny_model, "dynamic", int8_io=True)


def test_rejects_unknown_spatial_size():
    import keras

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match="fixed"):
        batch1_input_shape(model)


def test_calibration_samples_split_batches_and_limit():
    batch = np.zeros((5, 4, 4, 3), np.float32)
    single = np.ones((4, 4, 3), np.float32)
    samples = list(calibration_samples([1, 4, 4, 3], [batch, single, batch], 7))
    assert len(samples) == 7
    assert all(s.shape == (1, 4, 4, 3) for s in samples)
    assert samples[5].mean() == 1.0
    with pytest.raises(ValueError, match="does not match"):
        list(calibration_samples([1, 4, 4, 3], [np.zeros((3, 3))], 2))
    with pytest.raises(ValueError, match="no samples"):
        list(calibration_samples([1, 4, 4, 3], [], 2))
    default = list(calibration_samples([1, 2, 2, 1], None, 3, seed=0))
    assert len(default) == 3 and default[0].dtype == np.float32


def test_training_ops_flags_training_graph_ops():
    names = ["CONV_2D", "FlexFusedBatchNormV3", "RANDOM_UNIFORM", "VAR_HANDLE", "MUL"]
    assert training_ops(names) == [
        "FlexFusedBatchNormV3",
        "RANDOM_UNIFORM",
        "VAR_HANDLE",
    ]
