"""Export produces the inference graph a phone would run, in every precision."""

from __future__ import annotations

import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from mnas.latency.export import (
    batch1_input_shape,
    calibration_samples,
    export_name,
    export_quantizations,
    export_tflite,
    export_to_file,
    file_stem,
    size_table,
    tflite_file_name,
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


# -- export_to_file: the one build -> export -> atomic-write path -------------------

TINY_SPEC = "r1_k3_s11_e1_i16_o8,r1_k3_s22_e3_i8_o16"


def test_spec_with_trained_weights_exports_them_at_another_resolution(tmp_path):
    """A model trained at 32 px, rebuilt at 64 px with its weights: the file
    computes what the rebuilt Keras model computes, not a fresh random one."""
    import keras

    from mnas.model import build_model
    from mnas.search_space import parse_arch

    spec = parse_arch(TINY_SPEC).replace(resolution=32, name="tiny")
    keras.utils.set_random_seed(3)
    trained = build_model(spec, (32, 32, 3), num_classes=5)
    path = tmp_path / "out" / "tiny.tflite"
    exported = export_to_file(spec, str(path), resolution=64, weights_from=trained)
    assert exported.path == str(path)
    assert path.read_bytes() == exported.flatbuffer
    assert exported.size_bytes == path.stat().st_size
    assert list(tmp_path.glob("out/*")) == [path]  # no .partial left behind
    reference = build_model(spec, (64, 64, 3), num_classes=5)
    reference.set_weights(trained.get_weights())
    x = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype(np.float32)
    got = _run(exported.flatbuffer, x)
    assert got.shape == (1, 5)
    np.testing.assert_allclose(got, np.asarray(reference(x)), rtol=1e-4, atol=1e-4)


def test_spec_builds_at_its_own_resolution_and_num_classes(tmp_path):
    from mnas.search_space import parse_arch

    spec = parse_arch(TINY_SPEC).replace(resolution=24)
    exported = export_to_file(
        spec, str(tmp_path / "a.tflite"), num_classes=7, clear_session=True
    )
    interpreter = Interpreter(model_content=exported.flatbuffer)
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 24, 24, 3]
    assert list(interpreter.get_output_details()[0]["shape"]) == [1, 7]


def test_model_source_refuses_build_arguments(tiny_model, tmp_path):
    with pytest.raises(ValueError) as info:
        export_to_file(tiny_model, str(tmp_path / "m.tflite"), resolution=64)
    assert str(info.value) == "resolution apply to an ArchSpec source, not to a model"
    assert not (tmp_path / "m.tflite").exists()


def test_export_quantizations_names_files_and_sizes_them(tiny_model, tmp_path):
    exported = export_quantizations(
        tiny_model, str(tmp_path), "tiny w/ se", ("none", "dynamic")
    )
    assert [os.path.basename(e.path) for e in exported] == [
        "tiny_w__se_float.tflite",
        "tiny_w__se_dynamic.tflite",
    ]
    assert [e.quantization for e in exported] == ["none", "dynamic"]
    table = size_table(exported).splitlines()
    assert table[0].split() == [
        "file", "quantization", "bytes", "MiB", "size", "/", "float", "export", "s",
    ]  # fmt: skip
    float_row, dynamic_row = table[2].split(), table[3].split()
    assert float_row[:3] == [
        "tiny_w__se_float.tflite",
        "none",
        f"{exported[0].size_bytes:,}",
    ]
    assert float_row[4] == "1.000"
    ratio = exported[1].size_bytes / exported[0].size_bytes
    assert dynamic_row[4] == f"{round(ratio, 3):.3f}"


def test_file_names():
    from mnas.search_space import get_preset

    assert file_stem("a b/c:d") == "a_b_c_d"
    assert file_stem("") == "model"
    assert tflite_file_name("mnasnet-a1", "none") == "mnasnet-a1_float.tflite"
    assert tflite_file_name("x", "int8") == "x_int8.tflite"
    assert tflite_file_name("x-phi0.5") == "x-phi0.5.tflite"
    with pytest.raises(ValueError, match="quantization must be one of"):
        tflite_file_name("x", "fp16")
    spec = get_preset("mnasnet-a1")
    assert export_name(spec) == "mnasnet-a1"
    assert export_name(spec.scaled(0.75, 1.0).replace(resolution=192)) == (
        "mnasnet-a1_w0.75_r192"
    )
