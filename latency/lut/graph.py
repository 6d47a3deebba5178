"""One lookup-table entry as a tiny ``.tflite`` model, without Keras.

Building each of thousands of entries through Keras and the SavedModel path
costs ~0.7 s; writing the layer directly as a TF graph in the form the
converter turns the Keras model into (conv + bias for conv + batch norm,
activations after) and converting the GraphDef costs ~0.05 s. Tests check
that an entry converts to the same ops as the same layer cut out of the
Keras builder's model, so the two cannot drift apart unnoticed. A layer's
structure is its op's in ``mnas.model.ops``; this module only supplies the
primitives.
"""

from __future__ import annotations

import numpy as np

from mnas.latency.lut.keys import LayerKey
from mnas.model import ops

_ACTIVATIONS = ("relu", "relu6", "swish")
# A key's canonical skip -> the block skip whose structure builds it.
_BLOCK_SKIP = {"none": "none", "add": "identity", "pool": "pool"}


class GraphPrimitives(ops.ConcretePrimitives):
    """``mnas.model.ops`` primitives as raw TF ops, batch norm folded into a
    bias (as the converter folds it), activations after; weights are random
    constants drawn from ``rng`` in creation order."""

    def __init__(
        self,
        activation: str,
        rng: np.random.Generator,
        layer: ops.LayerFacts = ops.NO_LAYER,
    ) -> None:
        import tensorflow as tf

        super().__init__(layer)
        self.tf = tf
        self.act = {"relu": tf.nn.relu, "relu6": tf.nn.relu6, "swish": tf.nn.silu}[
            activation
        ]
        self.rng = rng

    def weight(self, *shape: int):
        values = self.rng.standard_normal(shape, dtype=np.float32) * 0.05
        return self.tf.constant(values)

    def _conv(self, x, width: int, kernel: int, stride: int):
        w = self.weight(kernel, kernel, int(x.shape[-1]), width)
        x = self.tf.nn.conv2d(x, w, stride, "SAME")
        return self.tf.nn.bias_add(x, self.weight(width))

    def conv_bn(self, x, part, width, kernel, stride, act=True):
        y = self._conv(x, width, kernel, stride)
        return self.act(y) if act else y

    def depthwise_bn_act(self, x, kernel, stride):
        channels = int(x.shape[-1])
        w = self.weight(kernel, kernel, channels, 1)
        y = self.tf.nn.depthwise_conv2d(x, w, [1, stride, stride, 1], "SAME")
        return self.act(self.tf.nn.bias_add(y, self.weight(channels)))

    def global_pool(self, x, part):
        return self.tf.reduce_mean(x, [1, 2], keepdims=True)

    def conv_bias(self, x, part, width):
        return self._conv(x, width, 1, 1)

    def activation(self, x, part):
        return self.act(x)

    def sigmoid(self, x, part):
        return self.tf.sigmoid(x)

    def multiply(self, x, gate, part):
        return x * gate

    def avg_pool(self, x, stride, part):
        return self.tf.nn.avg_pool2d(x, stride, stride, "SAME")

    def add(self, y, shortcut):
        return y + shortcut


def entry_graph(key: LayerKey, seed: int = 0):
    """Returns (graph_def, input_tensor, output_tensor) for ``key`` at batch 1.

    Weights are random constants: float latency does not depend on values.
    """
    import tensorflow as tf

    if key.activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {key.activation!r}")
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(
            tf.float32, [1, key.size, key.size, key.in_channels], name="input"
        )
        if key.kind == "layer":
            facts = ops.LayerFacts(
                key.in_channels,
                key.out_channels,
                key.se_filters,
                identity_skip=key.skip == "add",
            )
            p = GraphPrimitives(key.activation, rng, facts)
            args = ops.OpArgs(
                key.in_channels,
                key.out_channels,
                key.kernel,
                key.stride,
                key.expand_ratio,
            )
            y = ops.apply_layer(p, x, key.conv_op, args, _BLOCK_SKIP[key.skip])
        elif key.kind == "classifier":
            p = GraphPrimitives(key.activation, rng)
            pooled = tf.reduce_mean(x, [1, 2])
            logits = tf.matmul(pooled, p.weight(key.in_channels, key.out_channels))
            y = tf.nn.softmax(tf.nn.bias_add(logits, p.weight(key.out_channels)))
        else:  # stem or head: conv + BN + act
            p = GraphPrimitives(key.activation, rng)
            y = p.conv_bn(x, "", key.out_channels, key.kernel, key.stride)
        y = tf.identity(y, name="output")
    return graph.as_graph_def(), x, y


def export_entry(key: LayerKey, seed: int = 0) -> bytes:
    """``key`` as float32 ``.tflite`` bytes (batch 1)."""
    import tensorflow as tf

    graph_def, image, output = entry_graph(key, seed)
    converter = tf.compat.v1.lite.TFLiteConverter(graph_def, [image], [output])
    return bytes(converter.convert())
