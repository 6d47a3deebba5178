"""mnas computes exactly what the official MnasNet code computes.

The reference below restates, independently of mnas's own builder, the rules
of tensorflow/tpu ``models/official/mnasnet`` (``mnasnet_model.py``,
``mnasnet_models.py``) at its last change:

* block strings expand into one layer per repeat; only the first layer keeps
  the block's strides and declared input filters, the repeats take
  ``input_filters = output_filters`` and stride 1;
* ``round_filters`` leaves filters alone without a width ("depth") multiplier,
  and with one scales, rounds to the nearest multiple of 8 (at least 8) and
  adds 8 when that lost more than 10%; the head stays at 1280;
* the identity skip is added when the layer has ``id_skip``, stride 1 and its
  *declared* input filters equal its output filters (not the channels that
  arrive: mnasnet-small's stem has 8 filters, its first block is ``i16_o8``);
* squeeze-excite squeezes to ``max(1, int(declared input filters x ratio))``;
* batch norm in inference mode with epsilon 1e-3; ReLU everywhere;
* variable names: Keras layers (``use_keras=True``) are numbered per type over
  the whole graph in construction order (all blocks, then the stem, then the
  head) under ``<model>/mnas_net_model/<scope>/``; TF1 layers (batch norms
  always, every layer with ``use_keras=False``) per variable scope in call
  order under ``<model>/<scope>/``; every variable has an
  ``ExponentialMovingAverage`` shadow.

Each case writes random weights under the official names as an official-style
checkpoint (raw variables and different moving-average shadows), imports it
with the real importer, and compares the mnas model with a forward pass of
plain ``tf.nn`` ops over the shadows, layer by layer.
"""

from __future__ import annotations

import dataclasses
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnas.model.builder import build_model
from mnas.model.official.checkpoint import load_official_weights, write_checkpoint
from mnas.model.plan import plan_layers
from mnas.search_space import ArchSpec, decode_block_strings, get_preset

RESOLUTION = 64
NUM_CLASSES = 1000
HEAD_FILTERS = 1280
DIVISOR = 8
BN_EPSILON = 1e-3
TOLERANCE = 1e-4  # max |mnas - reference| relative to max |reference|, per layer
EMA = "/ExponentialMovingAverage"

# The published networks as mnasnet_models.py declares them: stem size,
# use_keras, block strings. Restated on purpose instead of read from
# mnas.search_space.presets, so that a wrong preset fails here.
OFFICIAL_MODELS: dict[str, tuple[int, bool, tuple[str, ...]]] = {
    "mnasnet-a1": (
        32,
        True,
        (
            "r1_k3_s11_e1_i32_o16_noskip",
            "r2_k3_s22_e6_i16_o24",
            "r3_k5_s22_e3_i24_o40_se0.25",
            "r4_k3_s22_e6_i40_o80",
            "r2_k3_s11_e6_i80_o112_se0.25",
            "r3_k5_s22_e6_i112_o160_se0.25",
            "r1_k3_s11_e6_i160_o320",
        ),
    ),
    "mnasnet-b1": (
        32,
        True,
        (
            "r1_k3_s11_e1_i32_o16_noskip",
            "r3_k3_s22_e3_i16_o24",
            "r3_k5_s22_e3_i24_o40",
            "r3_k5_s22_e6_i40_o80",
            "r2_k3_s11_e6_i80_o96",
            "r4_k5_s22_e6_i96_o192",
            "r1_k3_s11_e6_i192_o320_noskip",
        ),
    ),
    "mnasnet-small": (
        8,
        True,
        (
            "r1_k3_s11_e1_i16_o8",
            "r1_k3_s22_e3_i8_o16",
            "r2_k3_s22_e6_i16_o16",
            "r4_k5_s22_e6_i16_o32_se0.25",
            "r3_k3_s11_e6_i32_o32_se0.25",
            "r3_k5_s22_e6_i32_o88_se0.25",
            "r1_k3_s11_e6_i88_o144",
        ),
    ),
    "mnasnet-d1": (
        32,
        False,
        (
            "r1_k3_s11_e9_i32_o24",
            "r3_k3_s22_e9_i24_o36",
            "r5_k3_s22_e9_i36_o48",
            "r4_k5_s22_e9_i48_o96",
            "r5_k7_s11_e3_i96_o96",
            "r3_k3_s22_e9_i96_o80",
            "r1_k7_s11_e6_i80_o320_noskip",
        ),
    ),
    "mnasnet-d1-320": (
        32,
        False,
        (
            "r3_k5_s11_e6_i32_o24",
            "r4_k7_s22_e9_i24_o36",
            "r5_k5_s22_e9_i36_o48",
            "r5_k7_s22_e6_i48_o96",
            "r5_k3_s11_e9_i96_o144",
            "r5_k5_s22_e6_i144_o160",
            "r1_k7_s11_e9_i160_o320",
        ),
    ),
}


# -- the reference: official semantics -------------------------------------------


@dataclasses.dataclass(frozen=True)
class RefLayer:
    """One official ``MnasBlock`` (a block string expands into ``r`` of them)."""

    kernel: int
    stride: int
    expand: int
    input_filters: int  # declared, after rounding; not what arrives
    output_filters: int
    se_ratio: float | None
    id_skip: bool

    @property
    def has_se(self) -> bool:
        return self.se_ratio is not None and 0 < self.se_ratio <= 1

    @property
    def expanded(self) -> int:
        return self.input_filters * self.expand

    @property
    def se_filters(self) -> int:
        assert self.se_ratio is not None
        return max(1, int(self.input_filters * self.se_ratio))

    @property
    def adds_input(self) -> bool:
        return (
            self.id_skip
            and self.stride == 1
            and self.input_filters == (self.output_filters)
        )


def ref_round_filters(filters: int, multiplier: float | None) -> int:
    if not multiplier:
        return filters
    scaled = filters * multiplier
    nearest = int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR
    rounded = max(DIVISOR, nearest)
    return rounded + DIVISOR if rounded < 0.9 * scaled else rounded


def _parse(block_string: str) -> dict[str, str]:
    fields = {}
    for part in block_string.split("_"):
        match = re.fullmatch(r"([a-z]+)(\d.*)", part)
        if match:
            fields[match.group(1)] = match.group(2)
    return fields


def ref_layers(strings: tuple[str, ...], multiplier: float | None) -> list[RefLayer]:
    layers = []
    for string in strings:
        fields = _parse(string)
        strides = {int(fields["s"][0]), int(fields["s"][1])}
        assert len(strides) == 1, string
        first = RefLayer(
            kernel=int(fields["k"]),
            stride=strides.pop(),
            expand=int(fields["e"]),
            input_filters=ref_round_filters(int(fields["i"]), multiplier),
            output_filters=ref_round_filters(int(fields["o"]), multiplier),
            se_ratio=float(fields["se"]) if "se" in fields else None,
            id_skip="noskip" not in string,
        )
        layers.append(first)
        repeat = dataclasses.replace(
            first, input_filters=first.output_filters, stride=1
        )
        layers.extend([repeat] * (int(fields["r"]) - 1))
    return layers


@dataclasses.dataclass(frozen=True)
class RefNet:
    """Variable name prefixes of each op, by role, and the variables' shapes."""

    stem: dict[str, str]
    layers: list[tuple[RefLayer, dict[str, str]]]
    head: dict[str, str]
    shapes: dict[str, tuple[int, ...]]


LEAVES = {
    "conv2d": ("kernel",),
    "conv2d+bias": ("kernel", "bias"),
    "depthwise_conv2d": ("depthwise_kernel",),
    "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "dense": ("kernel", "bias"),
}


def ref_net(name: str, multiplier: float | None, use_keras: bool) -> RefNet:
    """Names every official variable the way TF1 + Keras would create them."""
    stem_size, _, strings = OFFICIAL_MODELS[name]
    layers = ref_layers(strings, multiplier)
    stem_filters = ref_round_filters(stem_size, multiplier)

    # (owner, role, layer type, variable scope, weight shapes), per owner in
    # call order; owner: "stem", a layer index or "head".
    ops: list[tuple[object, str, str, str, list[tuple[int, ...]]]] = []

    def bn(owner, role, scope, channels):
        ops.append((owner, role, "batch_normalization", scope, [(channels,)] * 4))

    ops.append(("stem", "conv", "conv2d", "mnas_stem", [(3, 3, 3, stem_filters)]))
    bn("stem", "bn", "mnas_stem", stem_filters)
    channels = stem_filters
    for index, layer in enumerate(layers):
        scope = f"mnas_blocks_{index}"
        if layer.expand != 1:
            shape = (1, 1, channels, layer.expanded)
            ops.append((index, "expand", "conv2d", scope, [shape]))
            bn(index, "expand_bn", scope, layer.expanded)
            channels = layer.expanded
        k = layer.kernel
        ops.append((index, "dw", "depthwise_conv2d", scope, [(k, k, channels, 1)]))
        bn(index, "dw_bn", scope, channels)
        if layer.has_se:
            se, reduced = f"{scope}/se", layer.se_filters
            ops.append(
                (
                    index,
                    "se_reduce",
                    "conv2d+bias",
                    se,
                    [(1, 1, channels, reduced), (reduced,)],
                )
            )
            ops.append(
                (
                    index,
                    "se_expand",
                    "conv2d+bias",
                    se,
                    [(1, 1, reduced, layer.expanded), (layer.expanded,)],
                )
            )
        shape = (1, 1, channels, layer.output_filters)
        ops.append((index, "project", "conv2d", scope, [shape]))
        bn(index, "project_bn", scope, layer.output_filters)
        channels = layer.output_filters
    head_shape = (1, 1, channels, HEAD_FILTERS)
    ops.append(("head", "conv", "conv2d", "mnas_head", [head_shape]))
    bn("head", "bn", "mnas_head", HEAD_FILTERS)
    dense_shapes = [(HEAD_FILTERS, NUM_CLASSES), (NUM_CLASSES,)]
    ops.append(("head", "dense", "dense", "mnas_head", dense_shapes))

    def numbered(base: str, count: dict, key) -> str:
        n = count.get(key, 0)
        count[key] = n + 1
        return base if n == 0 else f"{base}_{n}"

    prefix: dict[int, str] = {}
    # Keras layers get their names when the model constructs them: the
    # blocks' layers first, then the stem conv, the head conv and the dense.
    if use_keras:
        construction = [i for i, op in enumerate(ops) if op[0] not in ("stem", "head")]
        construction += [i for i, op in enumerate(ops) if op[0] == "stem"]
        construction += [i for i, op in enumerate(ops) if op[0] == "head"]
        per_type: dict[str, int] = {}
        for i in construction:
            _, _, kind, scope, _ = ops[i]
            if kind != "batch_normalization":
                base = kind.split("+")[0]
                layer_name = numbered(base, per_type, base)
                prefix[i] = f"{name}/mnas_net_model/{scope}/{layer_name}"
    # TF1 layers get theirs when called, counted per variable scope.
    per_scope: dict[tuple[str, str], int] = {}
    for i, (_, _, kind, scope, _) in enumerate(ops):
        if i not in prefix:
            base = kind.split("+")[0]
            prefix[i] = f"{name}/{scope}/{numbered(base, per_scope, (scope, base))}"

    roles: dict[object, dict[str, str]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (owner, role, kind, _, weight_shapes) in enumerate(ops):
        roles.setdefault(owner, {})[role] = prefix[i]
        for leaf, shape in zip(LEAVES[kind], weight_shapes, strict=True):
            shapes[f"{prefix[i]}/{leaf}"] = shape
    return RefNet(
        stem=roles["stem"],
        layers=[(layer, roles[i]) for i, layer in enumerate(layers)],
        head=roles["head"],
        shapes=shapes,
    )


def random_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict:
    """Weights that keep activations in a sane range through every layer."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        leaf = name.rsplit("/", 1)[1]
        if leaf in ("kernel", "depthwise_kernel"):
            fan_in = int(np.prod(shape[:-1])) if leaf == "kernel" else shape[0] ** 2
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif leaf in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:  # beta, moving_mean, bias
            value = rng.normal(0.0, 0.1, shape)
        out[name] = value.astype(np.float32)
    return out


def _conv(x, w: dict, prefix: str, stride: int = 1):
    y = tf.nn.conv2d(x, w[f"{prefix}/kernel"], stride, "SAME")
    return y + w[f"{prefix}/bias"] if f"{prefix}/bias" in w else y


def _bn(x, w: dict, prefix: str):
    scale = w[f"{prefix}/gamma"] / np.sqrt(w[f"{prefix}/moving_variance"] + BN_EPSILON)
    return (x - w[f"{prefix}/moving_mean"]) * scale + w[f"{prefix}/beta"]


def ref_forward(net: RefNet, w: dict, images: np.ndarray) -> list[tuple[str, object]]:
    """Inference-mode outputs of the stem, every layer, the head and the logits."""
    x = tf.nn.relu(_bn(_conv(images, w, net.stem["conv"], 2), w, net.stem["bn"]))
    outputs = [("stem", x)]
    for index, (layer, role) in enumerate(net.layers):
        inputs = x
        if layer.expand != 1:
            x = tf.nn.relu(_bn(_conv(x, w, role["expand"]), w, role["expand_bn"]))
        kernel = w[f"{role['dw']}/depthwise_kernel"]
        strides = (1, layer.stride, layer.stride, 1)
        x = tf.nn.depthwise_conv2d(x, kernel, strides, "SAME")
        x = tf.nn.relu(_bn(x, w, role["dw_bn"]))
        if layer.has_se:
            s = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
            s = tf.nn.relu(_conv(s, w, role["se_reduce"]))
            x = tf.sigmoid(_conv(s, w, role["se_expand"])) * x
        x = _bn(_conv(x, w, role["project"]), w, role["project_bn"])
        if layer.adds_input:
            x = x + inputs
        outputs.append((f"mnas_blocks_{index}", x))
    x = tf.nn.relu(_bn(_conv(x, w, net.head["conv"]), w, net.head["bn"]))
    outputs.append(("head", x))
    pooled = tf.reduce_mean(x, axis=(1, 2))
    dense = net.head["dense"]
    logits = tf.matmul(pooled, w[f"{dense}/kernel"]) + w[f"{dense}/bias"]
    outputs.append(("logits", logits))
    return outputs


# -- the mnas side ---------------------------------------------------------------


def mnas_endpoints(model: keras.Model) -> keras.Model:
    """The stem, each layer's last op (``block<b>_layer<r>_*``), head, logits."""
    last: dict[str, keras.layers.Layer] = {}
    for layer in model.layers:  # Topological order: a layer's output comes last.
        match = re.match(r"(block\d+_layer\d+)_", layer.name)
        if match:
            last[match.group(1)] = layer
    outputs = [model.get_layer("stem_act").output]
    outputs += [layer.output for layer in last.values()]
    outputs += [model.get_layer("head_act").output, model.output]
    return keras.Model(model.input, outputs)


CASES = [
    pytest.param("mnasnet-a1", None, id="mnasnet-a1"),
    pytest.param("mnasnet-b1", None, id="mnasnet-b1"),
    pytest.param("mnasnet-small", None, id="mnasnet-small"),
    pytest.param("mnasnet-d1", None, id="mnasnet-d1"),
    pytest.param("mnasnet-d1-320", None, id="mnasnet-d1-320"),
    pytest.param("mnasnet-a1", 0.35, id="mnasnet-a1-x0.35"),
    pytest.param("mnasnet-a1", 0.5, id="mnasnet-a1-x0.5"),
    pytest.param("mnasnet-a1", 0.75, id="mnasnet-a1-x0.75"),
    pytest.param("mnasnet-a1", 1.4, id="mnasnet-a1-x1.4"),
]


SKIP_CASES = [*CASES, pytest.param("mnasnet-small", 0.35, id="mnasnet-small-x0.35")]


@pytest.mark.parametrize("name, multiplier", SKIP_CASES)
def test_identity_skips_are_where_the_official_network_has_them(name, multiplier):
    spec = get_preset(name, width_multiplier=multiplier or 1.0)
    plan = plan_layers(spec, (RESOLUTION, RESOLUTION))
    official = ref_layers(OFFICIAL_MODELS[name][2], multiplier)
    assert [layer.has_identity_skip for layer in plan] == [
        layer.adds_input for layer in official
    ]


def test_mnasnet_small_first_layer_has_no_residual_at_width_one():
    # Stem 8 -> r1_k3_s11_e1_i16_o8: 8 channels arrive and leave, but the
    # declared input is 16. At x0.35 the declared input rounds to 8: a residual.
    first = plan_layers(get_preset("mnasnet-small"), (64, 64))[0]
    assert (first.input_filters, first.output_filters, first.stride) == (8, 8, 1)
    assert not first.has_identity_skip
    narrow = plan_layers(get_preset("mnasnet-small", 0.35), (64, 64))[0]
    assert narrow.has_identity_skip


def test_repeats_compare_their_output_filters_with_themselves():
    spec = ArchSpec(
        blocks=decode_block_strings(["r3_k3_s11_e6_i16_o24"]), stem_filters=16
    )
    assert [layer.has_identity_skip for layer in plan_layers(spec, (32, 32))] == [
        False,
        True,
        True,
    ]


def test_declared_match_without_matching_channels_adds_nothing():
    # The official code would fail adding 16 to 8 channels; mnas omits the add.
    spec = ArchSpec(
        blocks=decode_block_strings(["r1_k3_s11_e1_i8_o8"]), stem_filters=16
    )
    assert not plan_layers(spec, (32, 32))[0].has_identity_skip
    model = build_model(spec, (32, 32, 3), 10)
    assert not any(layer.name.endswith("_add") for layer in model.layers)


@pytest.mark.parametrize("name, multiplier", CASES)
def test_mnas_matches_the_official_network_layer_by_layer(
    tmp_path, name, multiplier
) -> None:
    use_keras = OFFICIAL_MODELS[name][1]
    net = ref_net(name, multiplier, use_keras)
    raw = random_weights(net.shapes, seed=1)
    ema = random_weights(net.shapes, seed=2)
    tensors = dict(raw)
    tensors.update({n + EMA: value for n, value in ema.items()})
    tensors["global_step"] = np.array(1000, np.int64)
    # Scaled checkpoints keep the base model's scope (mnasnet-a1 for x0.75).
    prefix = write_checkpoint(str(tmp_path / "model.ckpt-1000"), tensors)

    spec = get_preset(name, width_multiplier=multiplier or 1.0)
    spec = spec.replace(resolution=RESOLUTION)
    model = build_model(spec, num_classes=NUM_CLASSES, classifier_activation=None)
    report = load_official_weights(model, spec, prefix)

    assert report.model_name == name
    assert report.layout == ("keras" if use_keras else "legacy")
    assert sorted(report.assigned.values()) == sorted(n + EMA for n in raw)

    images = np.random.default_rng(3).normal(size=(2, RESOLUTION, RESOLUTION, 3))
    images = images.astype(np.float32)
    expected = ref_forward(net, ema, images)
    actual = mnas_endpoints(model)(images, training=False)
    assert len(actual) == len(expected), (
        f"mnas has {len(actual) - 3} layers, the official network {len(expected) - 3}"
    )
    errors = []
    for (label, want), got in zip(expected, actual, strict=True):
        want, got = np.asarray(want), np.asarray(got)
        if want.shape != got.shape:
            errors.append(f"{label}: shape {got.shape}, official {want.shape}")
            continue
        error = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
        if not error <= TOLERANCE:
            errors.append(f"{label}: relative difference {error:.3g}")
    assert not errors, (
        f"{name} x{multiplier or 1.0}: first difference at {errors[0]}"
        + (f"; {len(errors) - 1} later outputs differ too" if len(errors) > 1 else "")
    )
