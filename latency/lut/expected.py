"""Expected latency under a categorical distribution over the space's choices.

ProxylessNAS and FBNet make latency differentiable as an expectation:
E[LAT] = Σ_layers Σ_j p_j · LUT[layer, j]. In a factorized space a layer's
entry depends on several decisions at once (its block's op, kernel, SE and
skip, its block's width, the previous block's width, and whether the layer
exists at all), so each layer slot's entries are held as one tensor over
those decisions and contracted with the independent per-decision
probabilities; with one-hot probabilities the result is exactly the
predictor's ``predict`` of the decoded architecture (tests check this).

Works with block sharing (``space.decisions()``) and per-layer sharing
(``space.layerwise_decisions()``) of the same space.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mnas.latency.lut.builder import measure_missing
from mnas.latency.lut.keys import (
    LayerKey,
    classifier_key,
    head_key,
    layer_key,
    slot_block_args,
    space_slots,
    stem_key,
)
from mnas.latency.lut.predictor import LatencyPredictor
from mnas.latency.lut.table import LookupTable, MissingEntryError
from mnas.model.plan import conv_output_size
from mnas.search_space.space import FactorizedSearchSpace

_OP_KINDS = ("conv_op", "kernel", "se_ratio", "skip")


class ExpectedLatency:
    """Callable: probabilities per decision -> expected latency (ms, tf scalar)."""

    def __init__(
        self,
        predictor: LatencyPredictor | LookupTable,
        space: FactorizedSearchSpace,
        sharing: str = "block",
        num_classes: int | None = None,
    ) -> None:
        if isinstance(predictor, LookupTable):
            predictor = LatencyPredictor(predictor)
        self.predictor = predictor
        self.space = space
        self.sharing = sharing
        self.decision_names = tuple(d.name for d in space.decisions_for(sharing))
        self._num_choices = {
            d.name: d.num_choices for d in space.decisions_for(sharing)
        }
        table = predictor.table
        table.check_compatible(space_identity=space.identity())
        classes = table.header.num_classes if num_classes is None else num_classes
        self._slots = space_slots(space)
        keys = self._all_keys(classes)
        missing = table.missing(keys)
        if missing:
            if predictor.backend is None:
                raise MissingEntryError(missing, table.path)
            measure_missing(table, missing, predictor.backend)
        self._build_tensors(classes)

    # -- the entries as tensors ---------------------------------------------------
    def _all_keys(self, num_classes: int) -> list[LayerKey]:
        space = self.space
        keys = [stem_key(space.stem_filters, space.resolution, space.activation)]
        for slot in self._slots:
            for *_, block in slot_block_args(space):
                for c_in, c_out in slot.channel_pairs:
                    keys.append(
                        layer_key(
                            block, c_in, c_out, slot.stride, slot.size, space.activation
                        )
                    )
        keys.extend(self._head_keys())
        keys.append(self._classifier_key(num_classes))
        return keys

    def _final_size(self) -> int:
        last = self._slots[-1]
        return conv_output_size((last.size, last.size), last.stride)[0]

    def _head_keys(self) -> list[LayerKey]:
        space = self.space
        return [
            head_key(c, space.head_filters, self._final_size(), space.activation)
            for c in self._slots[-1].output_channels
        ]

    def _classifier_key(self, num_classes: int) -> LayerKey:
        return classifier_key(self.space.head_filters, self._final_size(), num_classes)

    def _build_tensors(self, num_classes: int) -> None:
        import tensorflow as tf

        space, ms = self.space, self.predictor.table.ms
        counts = (
            len(space.conv_ops),
            len(space.kernel_sizes),
            len(space.se_ratios),
            len(space.skips),
        )
        self._constant_ms = ms(
            stem_key(space.stem_filters, space.resolution, space.activation)
        ) + ms(self._classifier_key(num_classes))
        self._slot_tensors = []
        for slot in self._slots:
            n_in, n_out = len(slot.input_channels), len(slot.output_channels)
            if slot.slot == 0:
                values = np.zeros((*counts, n_in, n_out), np.float32)
                for o, k, s, p, block in slot_block_args(space):
                    for i, c_in in enumerate(slot.input_channels):
                        for j, c_out in enumerate(slot.output_channels):
                            values[o, k, s, p, i, j] = ms(
                                layer_key(
                                    block,
                                    c_in,
                                    c_out,
                                    slot.stride,
                                    slot.size,
                                    space.activation,
                                )
                            )
            else:
                values = np.zeros((*counts, n_out), np.float32)
                for o, k, s, p, block in slot_block_args(space):
                    for j, c in enumerate(slot.output_channels):
                        values[o, k, s, p, j] = ms(
                            layer_key(block, c, c, 1, slot.size, space.activation)
                        )
            self._slot_tensors.append(tf.constant(values))
        self._head = tf.constant([ms(k) for k in self._head_keys()], tf.float32)
        # P(layer slot r exists) = P(layers > r): a 0/1 matrix over layer choices.
        self._exists = []
        for slot in self._slots:
            options = space._block_choices(space.skeleton[slot.block_index])["layers"]
            self._exists.append(
                tf.constant([[1.0 if n > slot.slot else 0.0 for n in options]])
            )

    # -- the expectation -------------------------------------------------------------
    def _op_name(self, block: int, slot: int, kind: str) -> str:
        if self.sharing == "layer":
            return f"block{block}/layer{slot}/{kind}"
        return f"block{block}/{kind}"

    def raw(self, probs: Mapping[str, object]):
        """Expected sum of entries (uncalibrated), a float32 scalar tensor."""
        import tensorflow as tf

        p = self._check(probs)
        total = tf.constant(self._constant_ms, tf.float32)
        for slot, values, exists in zip(self._slots, self._slot_tensors, self._exists):
            b = slot.block_index
            op, kernel, se, skip = (
                p[self._op_name(b, slot.slot, k)] for k in _OP_KINDS
            )
            out = p[f"block{b}/filters"]
            if slot.slot == 0:
                prev = p[f"block{b - 1}/filters"] if b > 0 else tf.ones([1])
                value = tf.einsum(
                    "oksqij,o,k,s,q,i,j->", values, op, kernel, se, skip, prev, out
                )
            else:
                value = tf.einsum(
                    "oksqj,o,k,s,q,j->", values, op, kernel, se, skip, out
                )
            present = tf.reduce_sum(exists * p[f"block{b}/layers"])
            total = total + present * value
        last = len(self.space.skeleton) - 1
        return total + tf.reduce_sum(self._head * p[f"block{last}/filters"])

    def __call__(self, probs: Mapping[str, object]):
        """Expected calibrated latency in ms (differentiable in ``probs``)."""
        calibration = self.predictor.calibration
        return calibration.scale * self.raw(probs) + calibration.offset_ms

    def _check(self, probs: Mapping[str, object]) -> dict:
        import tensorflow as tf

        names = set(probs)
        expected = set(self.decision_names)
        if names != expected:
            missing = sorted(expected - names)[:3]
            extra = sorted(names - expected)[:3]
            raise ValueError(
                f"probabilities must be given for exactly the {len(expected)} "
                f"decisions of sharing={self.sharing!r}; missing {missing}, "
                f"unexpected {extra}"
            )
        result = {}
        for name in self.decision_names:
            tensor = tf.cast(tf.convert_to_tensor(probs[name]), tf.float32)
            if tensor.shape.rank != 1 or tensor.shape[0] != self._num_choices[name]:
                raise ValueError(
                    f"probabilities for {name!r} must have shape "
                    f"[{self._num_choices[name]}], got {tensor.shape}"
                )
            result[name] = tensor
        return result

    def one_hot(self, actions) -> dict[str, np.ndarray]:
        """One-hot probabilities for an action vector (tests, derived archs)."""
        result = {}
        for name, action in zip(self.decision_names, actions):
            vector = np.zeros(self._num_choices[name], np.float32)
            vector[action] = 1.0
            result[name] = vector
        return result
