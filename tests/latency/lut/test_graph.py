"""Keras-free table entries convert to the same ops as the builder's own layers.

Each entry of a small spec (resolution 32) covering conv/dsconv/mbconv
e1/e3/e6, SE on and off and every canonical skip (none, add, strided and
projecting pool) is compared with the same layer cut out of the Keras
builder and exported the way whole models are: equal TFLite op multisets
(a RELU left unfused, a missing bias or an extra pool would show) and equal
input and output shapes.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from mnas.latency.export import export_tflite, tflite_op_names
from mnas.latency.lut.graph import entry_graph, export_entry
from mnas.latency.lut.keys import LayerKey, keys_for_spec
from mnas.search_space import ArchSpec, decode_block_strings
from mnas.testing.lut import builder_layer_tflite

NUM_CLASSES = 10
BLOCKS = (
    "r1_k3_s11_e1_i16_o16_se0.25_conv",  # conv, SE, add
    "r2_k5_s22_e1_i16_o24_dsconv_poolskip",  # dsconv, strided projecting pool; add
    "r1_k3_s11_e1_i24_o32_noskip",  # mbconv e1, none
    "r1_k3_s11_e3_i32_o40_se0.25_poolskip",  # mbconv e3, SE, unstrided projection
    "r2_k5_s22_e6_i40_o40_poolskip",  # mbconv e6, strided pool without projection
    "r1_k3_s11_e6_i40_o40_se0.25",  # mbconv e6, SE, add
    "r1_k3_s11_e1_i40_o48_conv_noskip",  # conv without SE, none
)
EXPECTED_KEYS = (
    "stem:k3_s2:32x32x3->16:{act}",
    "layer:conv_k3_s1_se4_add:16x16x16->16:{act}",
    "layer:dsconv_k5_s2_se0_pool:16x16x16->24:{act}",
    "layer:dsconv_k5_s1_se0_add:8x8x24->24:{act}",
    "layer:mbconv_e1_k3_s1_se0_none:8x8x24->32:{act}",
    "layer:mbconv_e3_k3_s1_se8_pool:8x8x32->40:{act}",
    "layer:mbconv_e6_k5_s2_se0_pool:8x8x40->40:{act}",
    "layer:mbconv_e6_k5_s1_se0_add:4x4x40->40:{act}",
    "layer:mbconv_e6_k3_s1_se10_add:4x4x40->40:{act}",
    "layer:conv_k3_s1_se0_none:4x4x40->48:{act}",
    "head:k1_s1:4x4x48->32:{act}",
    "classifier:4x4x32->10",
)


def _spec(activation: str) -> ArchSpec:
    return ArchSpec(
        blocks=tuple(decode_block_strings(list(BLOCKS))),
        stem_filters=16,
        head_filters=32,
        resolution=32,
        activation=activation,
        name=f"graph-test-{activation}",
    )


def _keras_pieces(spec: ArchSpec, only: set[int] | None = None) -> list[bytes | None]:
    """Every key's piece of the builder's model, exported like a whole model
    (None for indices not in ``only``)."""
    import keras

    from mnas.model.builder import build_model
    from mnas.model.plan import plan_layers

    keras.backend.clear_session()
    pieces = []
    model = build_model(spec, (32, 32, 3), NUM_CLASSES)

    def cut(first: str, last: str) -> bytes:
        sub = keras.Model(model.get_layer(first).input, model.get_layer(last).output)
        return export_tflite(sub)

    pieces.append(cut("stem_conv", "stem_act"))
    for index, layer in enumerate(plan_layers(spec, (32, 32)), start=1):
        if only is not None and index not in only:
            pieces.append(None)
            continue
        pieces.append(builder_layer_tflite(spec, layer))
    pieces.append(cut("head_conv", "head_act"))
    pieces.append(cut("head_pool", "classifier"))
    return pieces


def _io_shapes(flatbuffer: bytes) -> tuple[list[int], list[int]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    return list(inp["shape"]), list(out["shape"])


@pytest.fixture(scope="module")
def relu_cases():
    spec = _spec("relu")
    keys = keys_for_spec(spec, num_classes=NUM_CLASSES)
    return keys, _keras_pieces(spec)


def test_the_spec_covers_the_intended_keys(relu_cases):
    keys, _ = relu_cases
    assert [str(k) for k in keys] == [k.format(act="relu") for k in EXPECTED_KEYS]


@pytest.mark.parametrize("index", range(len(EXPECTED_KEYS)))
def test_entry_has_the_builders_ops_and_shapes(relu_cases, index):
    keys, pieces = relu_cases
    key = keys[index]
    entry = export_entry(key)
    keras_ops = collections.Counter(tflite_op_names(pieces[index]))
    assert collections.Counter(tflite_op_names(entry)) == keras_ops, str(key)
    assert _io_shapes(entry) == _io_shapes(pieces[index])
    inp, out = _io_shapes(entry)
    assert inp == [1, key.size, key.size, key.in_channels]
    if key.kind == "classifier":
        assert out == [1, key.out_channels]
    else:
        assert out == [1, key.output_size, key.output_size, key.out_channels]


def test_known_op_multisets(relu_cases):
    keys, _ = relu_cases
    by_text = {str(k): k for k in keys}

    def ops(text):
        return dict(collections.Counter(tflite_op_names(export_entry(by_text[text]))))

    # Strided projecting pool skip: avg pool + 1x1 conv on the shortcut.
    assert ops("layer:dsconv_k5_s2_se0_pool:16x16x16->24:relu") == {
        "DEPTHWISE_CONV_2D": 1,
        "CONV_2D": 2,
        "AVERAGE_POOL_2D": 1,
        "ADD": 1,
    }
    # Expand, SE (reduce, expand), project, projecting shortcut: 5 convs.
    assert ops("layer:mbconv_e3_k3_s1_se8_pool:8x8x32->40:relu") == {
        "CONV_2D": 5,
        "DEPTHWISE_CONV_2D": 1,
        "MEAN": 1,
        "LOGISTIC": 1,
        "MUL": 1,
        "ADD": 1,
    }
    assert ops("layer:mbconv_e1_k3_s1_se0_none:8x8x24->32:relu") == {
        "DEPTHWISE_CONV_2D": 1,
        "CONV_2D": 1,
    }
    assert ops("classifier:4x4x32->10") == {
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
        "SOFTMAX": 1,
    }


def test_swish_entries_match_the_builder():
    spec = _spec("swish")
    keys = keys_for_spec(spec, num_classes=NUM_CLASSES)
    pieces = _keras_pieces(spec, only={5})
    for index in (0, 5, 10):  # stem, mbconv e3 with SE and projection, head
        keras_ops = collections.Counter(tflite_op_names(pieces[index]))
        entry_ops = collections.Counter(tflite_op_names(export_entry(keys[index])))
        assert entry_ops == keras_ops, str(keys[index])
        assert entry_ops["LOGISTIC"] >= 1


def test_entry_graph_is_seeded_and_runs():
    from ai_edge_litert.interpreter import Interpreter

    key = LayerKey(
        "layer",
        8,
        16,
        8,
        stride=2,
        kernel=3,
        conv_op="mbconv",
        expand_ratio=3,
        se_filters=2,
        skip="pool",
    )
    assert export_entry(key, seed=1) == export_entry(key, seed=1)
    assert export_entry(key, seed=1) != export_entry(key, seed=2)
    interpreter = Interpreter(model_content=export_entry(key))
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    interpreter.set_tensor(inp["index"], np.ones((1, 8, 8, 8), np.float32))
    interpreter.invoke()
    (out,) = interpreter.get_output_details()
    result = interpreter.get_tensor(out["index"])
    assert result.shape == (1, 4, 4, 16)
    assert np.all(np.isfinite(result))


def test_unknown_activation_is_refused():
    key = LayerKey("head", 8, 16, 4, activation="gelu")
    with pytest.raises(ValueError) as info:
        entry_graph(key)
    assert str(info.value) == "unknown activation 'gelu'"
