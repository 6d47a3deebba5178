"""One lookup-table entry as a tiny ``.tflite`` model, without Keras.

Building each of thousands of entries through Keras and the SavedModel path
costs ~0.7 s; writing the layer directly as a TF graph in the form the
converter turns the Keras model into (conv + bias for conv + batch norm,
activations after) and converting the GraphDef costs ~0.05 s. Tests check
that an entry converts to the same ops as the same layer cut out of the
Keras builder's model, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import numpy as np

from mnas.latency.lut.keys import LayerKey

_ACTIVATIONS = ("relu", "relu6", "swish")


def entry_graph(key: LayerKey, seed: int = 0):
    """Returns (graph_def, input_tensor, output_tensor) for ``key`` at batch 1.

    Weights are random constants: float latency does not depend on values.
    """
    import tensorflow as tf

    if key.activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {key.activation!r}")
    act = {"relu": tf.nn.relu, "relu6": tf.nn.relu6, "swish": tf.nn.silu}[
        key.activation
    ]
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():

        def weight(*shape):
            return tf.constant(rng.standard_normal(shape, dtype=np.float32) * 0.05)

        def conv(x, c_in, c_out, kernel, stride, bias=True):
            x = tf.nn.conv2d(x, weight(kernel, kernel, c_in, c_out), stride, "SAME")
            return tf.nn.bias_add(x, weight(c_out)) if bias else x

        def squeeze_excite(x, channels, squeeze):
            s = tf.reduce_mean(x, [1, 2], keepdims=True)
            s = act(conv(s, channels, squeeze, 1, 1))
            return x * tf.sigmoid(conv(s, squeeze, channels, 1, 1))

        x = tf.compat.v1.placeholder(
            tf.float32, [1, key.size, key.size, key.in_channels], name="input"
        )
        if key.kind == "stem":
            y = act(conv(x, key.in_channels, key.out_channels, key.kernel, key.stride))
        elif key.kind == "head":
            y = act(conv(x, key.in_channels, key.out_channels, 1, 1))
        elif key.kind == "classifier":
            pooled = tf.reduce_mean(x, [1, 2])
            logits = tf.matmul(pooled, weight(key.in_channels, key.out_channels))
            y = tf.nn.softmax(tf.nn.bias_add(logits, weight(key.out_channels)))
        else:
            y = _searchable_layer(key, x, act, conv, weight, squeeze_excite)
        y = tf.identity(y, name="output")
    return graph.as_graph_def(), x, y


def _searchable_layer(key, x, act, conv, weight, squeeze_excite):
    import tensorflow as tf

    c_in, c_out, stride = key.in_channels, key.out_channels, key.stride
    if key.conv_op == "conv":
        y = act(conv(x, c_in, c_out, key.kernel, stride))
        if key.se_filters:
            y = squeeze_excite(y, c_out, key.se_filters)
    else:
        y, mid = x, key.expanded_channels
        if key.conv_op == "mbconv" and key.expand_ratio != 1:
            y = act(conv(y, c_in, mid, 1, 1))
        y = tf.nn.depthwise_conv2d(
            y, weight(key.kernel, key.kernel, mid, 1), [1, stride, stride, 1], "SAME"
        )
        y = act(tf.nn.bias_add(y, weight(mid)))
        if key.se_filters:
            y = squeeze_excite(y, mid, key.se_filters)
        y = conv(y, mid, c_out, 1, 1)
        if key.conv_op == "dsconv":
            y = act(y)
    if key.skip == "add":
        return y + x
    if key.skip == "pool":
        shortcut = x
        if stride > 1:
            shortcut = tf.nn.avg_pool2d(shortcut, stride, stride, "SAME")
        if c_in != c_out:
            shortcut = conv(shortcut, c_in, c_out, 1, 1)
        return y + shortcut
    return y


def export_entry(key: LayerKey, seed: int = 0) -> bytes:
    """``key`` as float32 ``.tflite`` bytes (batch 1)."""
    import tensorflow as tf

    graph_def, image, output = entry_graph(key, seed)
    converter = tf.compat.v1.lite.TFLiteConverter(graph_def, [image], [output])
    return bytes(converter.convert())
