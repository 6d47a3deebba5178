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
    slot_block_args,
    slot_key,
    stem_key,
)
from mnas.latency.lut.predictor import LatencyPredictor
from mnas.latency.lut.table import LookupTable, MissingEntryError
from mnas.search_space.space import FactorizedSearchSpace


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
        self._slots = space.slots(sharing)
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
            for *_, block in slot_block_args(space, slot.block):
                for c_in, c_out in slot.width_pairs:
                    keys.append(slot_key(space, slot, block, c_in, c_out))
        keys.extend(self._head_keys())
        keys.append(self._classifier_key(num_classes))
        return keys

    def _head_keys(self) -> list[LayerKey]:
        space, last = self.space, self._slots[-1]
        return [
            head_key(c, space.head_filters, last.output_size, space.activation)
            for c in last.out_widths
        ]

    def _classifier_key(self, num_classes: int) -> LayerKey:
        size = self._slots[-1].output_size
        return classifier_key(self.space.head_filters, size, num_classes)

    def _build_tensors(self, num_classes: int) -> None:
        import tensorflow as tf

        space, ms = self.space, self.predictor.table.ms
        counts = (len(space.kernel_sizes), len(space.se_ratios), len(space.skips))
        self._constant_ms = ms(
            stem_key(space.stem_filters, space.resolution, space.activation)
        ) + ms(self._classifier_key(num_classes))
        self._slot_tensors = []
        for slot in self._slots:
            # Slot 0 of a block: an axis per input and per output width; later
            # slots: the block's own width feeds them (in == out), one axis.
            out = slot.out_widths
            ops = len(space.block_conv_ops(slot.block))
            if slot.in_decision == slot.out_decision:
                cells = [((j,), (c, c)) for j, c in enumerate(out)]
                shape = (ops, *counts, len(out))
            else:
                cells = [
                    ((i, j), (a, b))
                    for i, a in enumerate(slot.in_widths)
                    for j, b in enumerate(out)
                ]
                shape = (ops, *counts, len(slot.in_widths), len(out))
            values = np.zeros(shape, np.float32)
            for o, k, s, p, block in slot_block_args(space, slot.block):
                for index, (c_in, c_out) in cells:
                    values[(o, k, s, p, *index)] = ms(
                        slot_key(space, slot, block, c_in, c_out)
                    )
            self._slot_tensors.append(tf.constant(values))
        self._head = tf.constant([ms(k) for k in self._head_keys()], tf.float32)
        # P(layer slot r exists) = P(layers > r): a 0/1 row over layer choices.
        self._exists = [
            tf.constant([[1.0 if e else 0.0 for e in slot.exists]])
            for slot in self._slots
        ]

    # -- the expectation -------------------------------------------------------------
    def raw(self, probs: Mapping[str, object]):
        """Expected sum of entries (uncalibrated), a float32 scalar tensor."""
        import tensorflow as tf

        p = self._check(probs)
        total = tf.constant(self._constant_ms, tf.float32)
        for slot, values, exists in zip(self._slots, self._slot_tensors, self._exists):
            op, kernel, se, skip = (p[name] for name in slot.layer_decisions)
            out = p[slot.out_decision]
            if slot.in_decision == slot.out_decision:
                value = tf.einsum(
                    "oksqj,o,k,s,q,j->", values, op, kernel, se, skip, out
                )
            else:
                prev = tf.ones([1]) if slot.in_decision is None else p[slot.in_decision]
                value = tf.einsum(
                    "oksqij,o,k,s,q,i,j->", values, op, kernel, se, skip, prev, out
                )
            present = tf.reduce_sum(exists * p[slot.layers_decision])
            total = total + present * value
        return total + tf.reduce_sum(self._head * p[self._slots[-1].out_decision])

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
