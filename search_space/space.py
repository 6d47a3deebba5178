"""The MnasNet factorized hierarchical search space, declared as a value.

The space is data (a frozen dataclass of choice tuples relative to a skeleton),
and one public traversal serves everything that walks it: ``block_choices``
(the values of each decision of a block), ``decision_name`` (the one spelling
of a decision's name) and ``slots`` (every layer slot with its shapes and the
decisions that shape it). ``decisions``, ``decode``, ``encode`` and ``sample``
here, and the supernet, the lookup-table keys and the expected latency outside,
all go through them, so they cannot drift apart. Other spaces are declared by
constructing another ``FactorizedSearchSpace``.

Decisions per block, in order: ``conv_op``, ``kernel``, ``se_ratio``, ``skip``,
``filters``, ``layers``. All layers of a block share its choices; the first
layer carries the block's stride.

Pooling skip (``poolskip``): the residual branch is average pooling with window
and stride equal to the layer's stride (identity for stride 1), followed by a
1x1 conv + batch norm when the channel count changes. So, unlike the identity
skip, a pooling skip also connects the first, downsampling layer of a block.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Sequence

import numpy as np

from mnas.search_space.arch_spec import ArchSpec, round_filters
from mnas.search_space.block_args import BlockArgs
from mnas.search_space.decision import Decision
from mnas.search_space.errors import ActionError, NotInSpaceError
from mnas.search_space.presets import MOBILENET_V2_SKELETON
from mnas.search_space.validation import shown

DECISION_KINDS: tuple[str, ...] = (
    "conv_op",
    "kernel",
    "se_ratio",
    "skip",
    "filters",
    "layers",
)
#: With per-layer sharing (FBNet), these are chosen for every layer slot...
LAYER_DECISION_KINDS: tuple[str, ...] = ("conv_op", "kernel", "se_ratio", "skip")
#: ...and these stay per block (they fix the block's shape).
BLOCK_DECISION_KINDS: tuple[str, ...] = ("filters", "layers")
SHARINGS: tuple[str, ...] = ("block", "layer")


def decision_name(block: int, kind: str, slot: int | None = None) -> str:
    """The name of a decision: ``block{b}/{kind}``, or ``block{b}/layer{r}/{kind}``
    for a choice made per layer slot (FBNet sharing)."""
    if slot is None:
        return f"block{block}/{kind}"
    return f"block{block}/layer{slot}/{kind}"


def strided_size(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded stride: ceil(size / stride)."""
    return -(-size // stride)


@dataclasses.dataclass(frozen=True)
class LayerSlot:
    """One layer slot of the space: where it sits, what shapes it can see and
    which decisions choose them (under one sharing).

    Slot 0 of a block takes the previous block's widths (the stem's for block
    0, which no decision chooses: ``in_decision`` is None) and carries the
    block's stride; later slots take the block's own widths. ``exists[i]`` says
    whether the slot is built under the ``i``-th layer-count choice.
    """

    block: int
    slot: int
    stride: int
    input_size: int
    in_widths: tuple[int, ...]
    in_decision: str | None
    out_widths: tuple[int, ...]
    out_decision: str
    layer_decisions: tuple[str, ...]  # one per LAYER_DECISION_KINDS
    layers_decision: str
    exists: tuple[bool, ...]

    @property
    def kind_decisions(self) -> dict[str, str]:
        """conv_op/kernel/se_ratio/skip -> the decision that chooses it here."""
        return dict(zip(LAYER_DECISION_KINDS, self.layer_decisions))

    @property
    def output_size(self) -> int:
        return strided_size(self.input_size, self.stride)

    @property
    def in_max(self) -> int:
        return max(self.in_widths)

    @property
    def out_max(self) -> int:
        return max(self.out_widths)

    @property
    def width_pairs(self) -> tuple[tuple[int, int], ...]:
        """(input, output) widths the slot can see: any pair when the input comes
        from another decision, equal widths when the block's own choice feeds it."""
        if self.in_decision == self.out_decision:
            return tuple(zip(self.out_widths, self.out_widths))
        return tuple(itertools.product(self.in_widths, self.out_widths))


@dataclasses.dataclass(frozen=True)
class SkeletonBlock:
    """The reference block (MobileNetV2's by default) that choices are relative to."""

    expand_ratio: int
    filters: int
    num_repeat: int
    stride: int


@dataclasses.dataclass(frozen=True)
class ConvOpChoice:
    label: str
    conv_op: str
    expand_ratio: int


DEFAULT_CONV_OPS: tuple[ConvOpChoice, ...] = (
    ConvOpChoice("conv", "conv", 1),
    ConvOpChoice("dsconv", "dsconv", 1),
    ConvOpChoice("mbconv_e1", "mbconv", 1),
    ConvOpChoice("mbconv_e3", "mbconv", 3),
    ConvOpChoice("mbconv_e6", "mbconv", 6),
)


@dataclasses.dataclass(frozen=True)
class FactorizedSearchSpace:
    """A per-block factorized space; see the module docstring."""

    name: str
    version: int
    skeleton: tuple[SkeletonBlock, ...]
    conv_ops: tuple[ConvOpChoice, ...] = DEFAULT_CONV_OPS
    #: The first block's op choices where they differ from ``conv_ops`` (empty:
    #: the same). ProxylessNAS and TuNAS fix their first block to an
    #: unexpanded MBConv; MobileNetV2 and MnasNet-A1 have one there too.
    first_block_conv_ops: tuple[ConvOpChoice, ...] = ()
    kernel_sizes: tuple[int, ...] = (3, 5)
    se_ratios: tuple[float, ...] = (0.0, 0.25)
    skips: tuple[str, ...] = ("none", "identity", "pool")
    filter_multipliers: tuple[float, ...] = (0.75, 1.0, 1.25)
    layer_offsets: tuple[int, ...] = (-1, 0, 1)
    stem_filters: int = 32
    head_filters: int = 1280
    activation: str = "relu"
    dropout_rate: float = 0.2
    resolution: int = 224
    depth_divisor: int = 8

    # -- the one traversal ------------------------------------------------------
    def block_conv_ops(self, block_index: int) -> tuple[ConvOpChoice, ...]:
        """The conv ops block ``block_index`` chooses from."""
        if block_index == 0 and self.first_block_conv_ops:
            return self.first_block_conv_ops
        return self.conv_ops

    def all_conv_ops(self) -> tuple[ConvOpChoice, ...]:
        """Every conv op some block chooses from, each once."""
        return tuple(dict.fromkeys((*self.first_block_conv_ops, *self.conv_ops)))

    def block_choices(self, block_index: int) -> dict[str, tuple]:
        """The values of each decision kind of block ``block_index``, in
        ``DECISION_KINDS`` order (conv ops as ``ConvOpChoice``, filters rounded)."""
        skeleton = self.skeleton[block_index]
        filters = tuple(
            round_filters(skeleton.filters, m, self.depth_divisor)
            for m in self.filter_multipliers
        )
        layers = tuple(max(1, skeleton.num_repeat + o) for o in self.layer_offsets)
        return {
            "conv_op": self.block_conv_ops(block_index),
            "kernel": self.kernel_sizes,
            "se_ratio": self.se_ratios,
            "skip": self.skips,
            "filters": filters,
            "layers": layers,
        }

    def _labels(self, kind: str, values: tuple) -> tuple[str, ...]:
        if kind == "conv_op":
            return tuple(v.label for v in values)
        if kind == "filters":
            return tuple(f"x{m}={v}" for m, v in zip(self.filter_multipliers, values))
        if kind == "layers":
            return tuple(f"{o:+d}={v}" for o, v in zip(self.layer_offsets, values))
        return tuple(str(v) for v in values)

    def decisions(self) -> tuple[Decision, ...]:
        result = []
        for index in range(len(self.skeleton)):
            for kind, values in self.block_choices(index).items():
                result.append(
                    Decision(
                        decision_name(index, kind), kind, self._labels(kind, values)
                    )
                )
        return tuple(result)

    def max_layers(self, block_index: int) -> int:
        """The most layers block ``block_index`` can have (its layer slots)."""
        return max(self.block_choices(block_index)["layers"])

    def layerwise_decisions(self) -> tuple[Decision, ...]:
        """FBNet-style sharing: op, kernel, SE and skip per layer slot; filters and
        layer count per block. Names: ``block{b}/layer{r}/{kind}``, ``block{b}/{kind}``.
        Slots beyond a block's chosen layer count are ignored by the decoder."""
        result = []
        for index in range(len(self.skeleton)):
            choices = self.block_choices(index)
            for slot in range(self.max_layers(index)):
                for kind in LAYER_DECISION_KINDS:
                    result.append(
                        Decision(
                            decision_name(index, kind, slot),
                            kind,
                            self._labels(kind, choices[kind]),
                        )
                    )
            for kind in BLOCK_DECISION_KINDS:
                result.append(
                    Decision(
                        decision_name(index, kind),
                        kind,
                        self._labels(kind, choices[kind]),
                    )
                )
        return tuple(result)

    def decisions_for(self, sharing: str) -> tuple[Decision, ...]:
        """``decisions()`` for ``sharing='block'``, ``layerwise_decisions()`` for
        ``'layer'``."""
        if sharing == "block":
            return self.decisions()
        if sharing == "layer":
            return self.layerwise_decisions()
        raise ActionError(f"sharing must be one of {SHARINGS}, got {shown(sharing)}")

    def slots(self, sharing: str = "block") -> tuple[LayerSlot, ...]:
        """Every layer slot of the space in network order, with the names of the
        decisions of ``sharing`` that choose its op, kernel, SE, skip, widths and
        existence (see ``LayerSlot``)."""
        self.decisions_for(sharing)  # validates ``sharing``
        slots = []
        size = strided_size(self.resolution, 2)  # after the stem
        in_widths: tuple[int, ...] = (self.stem_filters,)
        in_decision: str | None = None
        for b in range(len(self.skeleton)):
            choices = self.block_choices(b)
            widths, counts = tuple(choices["filters"]), tuple(choices["layers"])
            out_decision = decision_name(b, "filters")
            for r in range(self.max_layers(b)):
                stride = self.skeleton[b].stride if r == 0 else 1
                per_layer = r if sharing == "layer" else None
                slots.append(
                    LayerSlot(
                        block=b,
                        slot=r,
                        stride=stride,
                        input_size=size,
                        in_widths=in_widths if r == 0 else widths,
                        in_decision=in_decision if r == 0 else out_decision,
                        out_widths=widths,
                        out_decision=out_decision,
                        layer_decisions=tuple(
                            decision_name(b, kind, per_layer)
                            for kind in LAYER_DECISION_KINDS
                        ),
                        layers_decision=decision_name(b, "layers"),
                        exists=tuple(count > r for count in counts),
                    )
                )
                size = strided_size(size, stride)
            in_widths, in_decision = widths, out_decision
        return tuple(slots)

    def decode_for(self, sharing: str, actions: Sequence[int]) -> ArchSpec:
        if sharing == "layer":
            return self.decode_layerwise(actions)
        self.decisions_for(sharing)  # validates the name
        return self.decode(actions)

    def decode_layerwise(self, actions: Sequence[int]) -> ArchSpec:
        """Actions over ``layerwise_decisions()`` -> spec. Consecutive layers with
        the same choices are merged into one block string (``r2``...), so a choice
        shared by all layers decodes exactly like ``decode``."""
        decisions = self.layerwise_decisions()
        checked = _check_actions(self.name, decisions, actions)
        chosen = dict(zip((d.name for d in decisions), checked))
        blocks: list[BlockArgs] = []
        input_filters = self.stem_filters
        for index, skeleton in enumerate(self.skeleton):
            options = self.block_choices(index)
            filters = options["filters"][chosen[decision_name(index, "filters")]]
            num_layers = options["layers"][chosen[decision_name(index, "layers")]]
            runs: list[tuple[tuple, int]] = []
            for slot in range(num_layers):
                key = tuple(
                    chosen[decision_name(index, kind, slot)]
                    for kind in LAYER_DECISION_KINDS
                )
                if runs and runs[-1][0] == key:
                    runs[-1] = (key, runs[-1][1] + 1)
                else:
                    runs.append((key, 1))
            for run_index, (key, repeats) in enumerate(runs):
                values = {
                    kind: options[kind][a] for kind, a in zip(LAYER_DECISION_KINDS, key)
                }
                op: ConvOpChoice = values["conv_op"]
                block = BlockArgs(
                    num_repeat=repeats,
                    kernel_size=values["kernel"],
                    stride=skeleton.stride if run_index == 0 else 1,
                    expand_ratio=op.expand_ratio,
                    input_filters=input_filters,
                    output_filters=filters,
                    se_ratio=values["se_ratio"],
                    conv_op=op.conv_op,  # type: ignore[arg-type]
                    skip=values["skip"],  # type: ignore[arg-type]
                )
                blocks.append(block)
                input_filters = filters
        return self._spec(tuple(blocks))

    def _spec(self, blocks: tuple[BlockArgs, ...]) -> ArchSpec:
        return ArchSpec(
            blocks=blocks,
            stem_filters=self.stem_filters,
            head_filters=self.head_filters,
            activation=self.activation,  # type: ignore[arg-type]
            dropout_rate=self.dropout_rate,
            resolution=self.resolution,
            depth_divisor=self.depth_divisor,
            name=f"{self.name}-candidate",
        )

    @property
    def num_decisions(self) -> int:
        return len(self.skeleton) * len(DECISION_KINDS)

    def size(self) -> int:
        """Number of distinct action vectors (product of choice counts)."""
        return math.prod(d.num_choices for d in self.decisions())

    def identity(self) -> str:
        """Name, version and a hash of the full declaration: a table or journal
        built for one space is refused by another."""
        declaration = dataclasses.asdict(self)
        if not self.first_block_conv_ops:  # identities from before the field
            del declaration["first_block_conv_ops"]
        payload = json.dumps(declaration, sort_keys=True, default=str)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
        return f"{self.name}/v{self.version}/{digest}"

    # -- actions <-> ArchSpec ------------------------------------------------
    def validate_actions(self, actions: Sequence[int]) -> tuple[int, ...]:
        return _check_actions(self.name, self.decisions(), actions)

    def decode(self, actions: Sequence[int]) -> ArchSpec:
        actions = self.validate_actions(actions)
        per_block = len(DECISION_KINDS)
        blocks = []
        input_filters = self.stem_filters
        for index, skeleton in enumerate(self.skeleton):
            chosen = actions[index * per_block : (index + 1) * per_block]
            values = {
                kind: options[a]
                for (kind, options), a in zip(self.block_choices(index).items(), chosen)
            }
            op: ConvOpChoice = values["conv_op"]
            block = BlockArgs(
                num_repeat=values["layers"],
                kernel_size=values["kernel"],
                stride=skeleton.stride,
                expand_ratio=op.expand_ratio,
                input_filters=input_filters,
                output_filters=values["filters"],
                se_ratio=values["se_ratio"],
                conv_op=op.conv_op,  # type: ignore[arg-type]
                skip=values["skip"],  # type: ignore[arg-type]
            )
            blocks.append(block)
            input_filters = block.output_filters
        return self._spec(tuple(blocks))

    def encode(self, spec: ArchSpec) -> tuple[int, ...]:
        """Actions that decode to ``spec``; ties (e.g. clamped layer counts) pick
        the choice closest to the skeleton."""
        # Compare what would be built, so equivalent spellings (a head that is
        # only widened above width 1.0, say) are accepted.
        globals_expected = {
            "stem filters": (spec.scaled_stem_filters(), self.stem_filters),
            "head filters": (spec.scaled_head_filters(), self.head_filters),
            "activation": (spec.activation, self.activation),
        }
        for field, (actual, expected) in globals_expected.items():
            if actual != expected:
                raise NotInSpaceError(
                    f"{spec.name}: {field} {actual!r} is not in search space "
                    f"{self.name!r} (it has {expected!r})"
                )
        blocks = spec.scaled_blocks()
        if len(blocks) != len(self.skeleton):
            raise NotInSpaceError(
                f"{spec.name}: has {len(blocks)} blocks, search space "
                f"{self.name!r} has {len(self.skeleton)}"
            )
        actions: list[int] = []
        for index, (block, skeleton) in enumerate(zip(blocks, self.skeleton)):
            if block.stride != skeleton.stride:
                raise NotInSpaceError(
                    f"{spec.name}: block {index} stride {block.stride} differs from the "
                    f"space's {skeleton.stride}"
                )
            choices = self.block_choices(index)
            wanted = {
                "conv_op": (block.conv_op, block.expand_ratio),
                "kernel": block.kernel_size,
                "se_ratio": block.se_ratio,
                "skip": block.skip,
                "filters": block.output_filters,
                "layers": block.num_repeat,
            }
            for kind, options in choices.items():
                keys = (
                    [(o.conv_op, o.expand_ratio) for o in options]
                    if kind == "conv_op"
                    else list(options)
                )
                matches = [i for i, key in enumerate(keys) if key == wanted[kind]]
                if not matches:
                    raise NotInSpaceError(
                        f"{spec.name}: block {index} {kind}={wanted[kind]!r} is not "
                        f"among the choices {tuple(keys)} of search space {self.name!r}"
                    )
                actions.append(min(matches, key=lambda i: self._tie_rank(kind, i)))
        return tuple(actions)

    def _tie_rank(self, kind: str, index: int) -> tuple[float, int]:
        if kind == "filters":
            return (abs(self.filter_multipliers[index] - 1.0), index)
        if kind == "layers":
            return (abs(self.layer_offsets[index]), index)
        return (0.0, index)

    def sample(self, rng: np.random.Generator | int | None = None) -> tuple[int, ...]:
        """A uniformly random action vector."""
        generator = (
            rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        )
        return tuple(int(generator.integers(d.num_choices)) for d in self.decisions())


def _check_actions(
    space_name: str, decisions: Sequence[Decision], actions: Sequence[int]
) -> tuple[int, ...]:
    """``actions`` as a tuple of ints: a sequence (or 1-D integer array) of
    one in-range integer per decision. Text, bytes (a sequence of small ints),
    mappings, sets and iterators are refused, as are floats and bools."""
    count = len(decisions)
    if isinstance(actions, np.ndarray):
        if actions.ndim != 1 or not np.issubdtype(actions.dtype, np.integer):
            raise ActionError(
                f"actions must be a 1-D integer array of {count} actions, got a "
                f"{actions.dtype} array of shape {actions.shape}"
            )
    elif isinstance(actions, str | bytes | bytearray | memoryview) or not isinstance(
        actions, Sequence
    ):
        raise ActionError(
            f"actions must be a sequence of {count} integers, "
            f"got {type(actions).__name__}"
        )
    if len(actions) != count:
        raise ActionError(
            f"expected {count} actions for search space {space_name!r}, "
            f"got {len(actions)}"
        )
    checked = []
    for decision, value in zip(decisions, actions):
        if isinstance(value, bool | np.bool_) or not isinstance(
            value, int | np.integer
        ):
            raise ActionError(
                f"action for decision {decision.name!r} must be an integer, "
                f"got {shown(value)}"
            )
        if not 0 <= value < decision.num_choices:
            raise ActionError(
                f"action {shown(value)} for decision {decision.name!r} is out of "
                f"range [0, {decision.num_choices})"
            )
        checked.append(int(value))
    return tuple(checked)


MNASNET_SPACE = FactorizedSearchSpace(
    name="mnasnet",
    version=1,
    skeleton=tuple(SkeletonBlock(*row) for row in MOBILENET_V2_SKELETON),
)

#: MnasNet's skeleton and per-block factorization over one op family, the
#: inverted bottleneck of expansion 3 or 6 with the identity residual wherever
#: shapes allow (ProxylessNAS's expansions on MobileNetV2's layer): expansion,
#: kernel size, squeeze-excite, width and depth are searched per block. Made
#: for weight-sharing evaluation (``--evaluation=shared``, TuNAS): every choice
#: here is nested in a larger one (expansion 3 the first channels of 6, a
#: kernel the centre of the 5x5, a width the first channels of the widest, a
#: dropped layer its shortcut), so one supernet's uniformly sampled paths learn
#: from each other's steps. On the MnasNet space they stay at chance, because
#: paths also differ in conv type and in whether a layer has a shortcut;
#: expansion 1 (no expansion conv, so nothing it computes is nested in 3 or 6)
#: stalled them too as a choice. The first block is MBConv e1 alone, as in
#: MobileNetV2, MnasNet-A1 and ProxylessNAS (its kernel, SE, width and depth
#: still searched): at 112 px an expansion there costs more than it does
#: anywhere else. Version 1 offered expansion 6 alone, version 2 expansions 3
#: and 6 in every block. See docs/shared_evaluation.md, "Why uniform paths do
#: not learn".
MNASNET_MBCONV_SPACE = FactorizedSearchSpace(
    name="mnasnet-mbconv",
    version=3,
    skeleton=MNASNET_SPACE.skeleton,
    conv_ops=tuple(
        op for op in DEFAULT_CONV_OPS if op.label in ("mbconv_e3", "mbconv_e6")
    ),
    first_block_conv_ops=tuple(
        op for op in DEFAULT_CONV_OPS if op.label == "mbconv_e1"
    ),
    skips=("identity",),
)

_SPACES = {space.name: space for space in (MNASNET_SPACE, MNASNET_MBCONV_SPACE)}


def get_search_space(name: str = "mnasnet") -> FactorizedSearchSpace:
    if not isinstance(name, str) or name not in _SPACES:
        raise ActionError(
            f"unknown search space {shown(name)}; known spaces: {', '.join(sorted(_SPACES))}"
        )
    return _SPACES[name]
