"""Variable names of the official MnasNet checkpoints (tensorflow/tpu), as data.

The official TF1 code (``models/official/mnasnet/mnasnet_model.py``) never
names its layers; TensorFlow generates the names, so they follow from how and
in which order the layers are created. These are the facts this module
encodes, checked against that code and against variable names quoted from
real checkpoints (``mnasnet-a1/mnas_net_model/mnas_blocks_5/conv2d_16/kernel``,
``<model>/mnas_stem/batch_normalization/gamma``, the frozen graph's output
``mnasnet-a1/mnas_net_model/mnas_head/dense/BiasAdd``):

* The model is built inside ``tf.variable_scope(<model_name>)``; the stem, each
  layer (``mnas_blocks_<i>``, numbered over all layers of all blocks) and the
  head run inside variable scopes ``mnas_stem``, ``mnas_blocks_<i>`` and
  ``mnas_head``; squeeze-excite runs inside a nested ``se`` scope.
* Each layer (``MnasBlock``) creates, in this order: expand conv 1x1 and its
  batch norm (only when ``expand_ratio != 1``), depthwise conv and its batch
  norm, the SE reduce and expand convs (with bias; only with SE), the
  projection conv 1x1 and its batch norm. Stem: conv 3x3 + batch norm. Head:
  conv 1x1 + batch norm, pooling, dropout, dense (with bias).
* ``use_keras=True`` (mnasnet-a1, -b1, -small and the width-scaled A1
  checkpoints): convs, depthwise convs and the dense layer are
  ``tf.keras.layers``. Keras names them when they are *constructed*, with
  one counter per layer type for the whole graph (``conv2d``, ``conv2d_1``,
  ...): all blocks are constructed first, then the stem conv, then the head
  conv. Their variables live under the *name scope*, which includes the Keras
  model's own name: ``<model>/mnas_net_model/<scope>/[se/]conv2d_<n>/kernel``.
  Batch norms are TF1 ``tf.layers.BatchNormalization``; those are named when
  first *called*, with a counter per variable scope, and their variables live
  under the variable scope (no model name):
  ``<model>/<scope>/batch_normalization[_k]/gamma``.
* ``use_keras=False`` (mnasnet-d1, -d1-320): every layer is a TF1 layer, so
  every name is per variable scope and in call order, without the model name:
  ``<model>/mnas_blocks_3/conv2d_1/kernel``, ``<model>/mnas_head/dense/kernel``.
* Exponential-moving-average shadows are ``<variable>/ExponentialMovingAverage``
  (trainable variables and batch-norm moving statistics); RMSProp slots are
  ``<variable>/RMSProp`` and ``<variable>/RMSProp_1``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from mnas.model import ops
from mnas.model.plan import LayerPlan, conv_names, depthwise_names, plan_layers
from mnas.search_space import ArchSpec

KERAS_MODEL_SCOPE = "mnas_net_model"  # snake_case of the class MnasNetModel.
STEM_SCOPE = "mnas_stem"
HEAD_SCOPE = "mnas_head"
SE_SCOPE = "se"
EMA_SUFFIX = "/ExponentialMovingAverage"

CONV = "conv2d"
DEPTHWISE = "depthwise_conv2d"
BATCH_NORM = "batch_normalization"
DENSE = "dense"

# Layer kind -> (official weight names, Keras weight names), in matching order.
WEIGHTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    CONV: (("kernel",), ("kernel",)),
    "conv2d_bias": (("kernel", "bias"), ("kernel", "bias")),
    DEPTHWISE: (("depthwise_kernel",), ("kernel",)),
    BATCH_NORM: (
        ("gamma", "beta", "moving_mean", "moving_variance"),
        ("gamma", "beta", "moving_mean", "moving_variance"),
    ),
    DENSE: (("kernel", "bias"), ("kernel", "bias")),
}

# Tensors a checkpoint may hold that carry no model weight: optimizer slots,
# step counters, the TF2 object graph. Matched as name suffixes / full names.
IGNORED_SUFFIXES: tuple[str, ...] = (
    "/RMSProp",
    "/RMSProp_1",
    "/Momentum",
    "/Adam",
    "/Adam_1",
)
IGNORED_NAMES: tuple[str, ...] = (
    "global_step",
    "_CHECKPOINTABLE_OBJECT_GRAPH",
    "beta1_power",
    "beta2_power",
)

# use_keras per published model (mnasnet_models.py); scaled A1 checkpoints
# keep A1's setting.
LAYOUTS = ("keras", "legacy")
PRESET_LAYOUT = {
    "mnasnet-a1": "keras",
    "mnasnet-b1": "keras",
    "mnasnet-small": "keras",
    "mnasnet-d1": "legacy",
    "mnasnet-d1-320": "legacy",
}


@dataclasses.dataclass(frozen=True)
class OfficialLayer:
    """One official layer with weights and the Keras layer that receives them."""

    kind: str  # a key of WEIGHTS
    scope: str  # mnas_stem, mnas_blocks_<i> or mnas_head (plus /se for SE)
    keras_name: str  # the layer's name in mnas.model.builder's model
    keras_layer: bool  # tf.keras layer (name-scoped) vs TF1 layer (variable-scoped)


@dataclasses.dataclass(frozen=True)
class NameEntry:
    """One checkpoint variable and the Keras weight (``layer/weight``) it fills."""

    official: str
    keras: str


class _ConstructionOrder(ops.ChannelWalker):
    """Walks an official op's structure (``mnas.model.ops``) and lists its
    weighted layers: the official ``MnasBlock`` creates them in the same order
    (expand, depthwise, SE reduce and expand, project)."""

    def __init__(self, plan: LayerPlan, keras: bool, out: list[OfficialLayer]):
        super().__init__(plan.facts)
        self.name = plan.name
        self.scope = f"mnas_blocks_{plan.global_index}"
        self.keras = keras
        self.out = out

    def conv_bn(self, x, part, width, kernel, stride, act=True):
        conv, bn, _ = conv_names(self.name, part)
        self.out.append(OfficialLayer(CONV, self.scope, conv, self.keras))
        self.out.append(OfficialLayer(BATCH_NORM, self.scope, bn, False))
        return width

    def depthwise_bn_act(self, x, kernel, stride):
        conv, bn, _ = depthwise_names(self.name)
        self.out.append(OfficialLayer(DEPTHWISE, self.scope, conv, self.keras))
        self.out.append(OfficialLayer(BATCH_NORM, self.scope, bn, False))
        return x

    def conv_bias(self, x, part, width):
        se = f"{self.scope}/{SE_SCOPE}"
        self.out.append(
            OfficialLayer("conv2d_bias", se, f"{self.name}_{part}", self.keras)
        )
        return width


def _layers_in_construction_order(spec: ArchSpec, layout: str) -> list[OfficialLayer]:
    """Every weighted layer, in the order the official code constructs it."""
    keras = layout == "keras"
    out: list[OfficialLayer] = []
    for plan in plan_layers(spec, (spec.resolution, spec.resolution)):
        block = plan.block
        if not ops.get_op(block.conv_op).official or block.skip == "pool":
            raise ValueError(
                f"layer {plan.name} ({block.to_string()}) has no official "
                "counterpart: official MnasNet layers are MBConv with identity "
                "or no skip"
            )
        ops.apply_layer(
            _ConstructionOrder(plan, keras, out),
            plan.input_filters,
            block.conv_op,
            plan.op_args,
            block.skip,
        )
    out.append(OfficialLayer(CONV, STEM_SCOPE, "stem_conv", keras))
    out.append(OfficialLayer(BATCH_NORM, STEM_SCOPE, "stem_bn", False))
    out.append(OfficialLayer(CONV, HEAD_SCOPE, "head_conv", keras))
    out.append(OfficialLayer(BATCH_NORM, HEAD_SCOPE, "head_bn", False))
    out.append(OfficialLayer(DENSE, HEAD_SCOPE, "classifier", keras))
    return out


def _call_order(layers: list[OfficialLayer]) -> list[OfficialLayer]:
    """Stem first, then the blocks, then the head (construction puts stem last)."""
    stem = [layer for layer in layers if layer.scope == STEM_SCOPE]
    head = [layer for layer in layers if layer.scope == HEAD_SCOPE]
    body = [layer for layer in layers if layer.scope not in (STEM_SCOPE, HEAD_SCOPE)]
    return stem + body + head


def _base_name(kind: str) -> str:
    return CONV if kind == "conv2d_bias" else kind


def _numbered(base: str, index: int) -> str:
    return base if index == 0 else f"{base}_{index}"


def layer_names(spec: ArchSpec, layout: str) -> dict[str, str]:
    """Keras layer name -> official layer path (without the model scope)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    layers = _layers_in_construction_order(spec, layout)
    names: dict[str, str] = {}
    # Keras layers: one counter per type for the whole graph, construction order.
    global_count: dict[str, int] = {}
    for layer in layers:
        if layer.keras_layer:
            base = _base_name(layer.kind)
            index = global_count.get(base, 0)
            global_count[base] = index + 1
            names[layer.keras_name] = (
                f"{KERAS_MODEL_SCOPE}/{layer.scope}/{_numbered(base, index)}"
            )
    # TF1 layers: one counter per (variable scope, type), call order.
    scope_count: dict[tuple[str, str], int] = {}
    for layer in _call_order(layers):
        if not layer.keras_layer:
            base = _base_name(layer.kind)
            key = (layer.scope, base)
            index = scope_count.get(key, 0)
            scope_count[key] = index + 1
            names[layer.keras_name] = f"{layer.scope}/{_numbered(base, index)}"
    return names


def name_entries(spec: ArchSpec, model_name: str, layout: str) -> list[NameEntry]:
    """Every official variable of ``spec`` and the Keras weight it fills."""
    layers = {
        layer.keras_name: layer for layer in _layers_in_construction_order(spec, layout)
    }
    entries = []
    for keras_name, path in layer_names(spec, layout).items():
        official_weights, keras_weights = WEIGHTS[layers[keras_name].kind]
        for official, keras in zip(official_weights, keras_weights, strict=True):
            entries.append(
                NameEntry(f"{model_name}/{path}/{official}", f"{keras_name}/{keras}")
            )
    return entries


def is_ignored(name: str) -> bool:
    """Optimizer slots and counters: tensors that are no model weight."""
    if name in IGNORED_NAMES:
        return True
    stem = name[: -len(EMA_SUFFIX)] if name.endswith(EMA_SUFFIX) else name
    return any(stem.endswith(suffix) for suffix in IGNORED_SUFFIXES)


def iter_model_names(names: list[str]) -> Iterator[str]:
    """Candidate model scopes: what precedes ``/mnas_stem/`` in the names."""
    seen = set()
    for name in names:
        for marker in (f"/{KERAS_MODEL_SCOPE}/{STEM_SCOPE}/", f"/{STEM_SCOPE}/"):
            if marker in name:
                prefix = name.split(marker, 1)[0]
                if prefix not in seen:
                    seen.add(prefix)
                    yield prefix
                break
