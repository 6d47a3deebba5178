"""Per-block arguments and the block-string grammar.

The official MnasNet strings (``r3_k5_s22_e3_i24_o40_se0.25``, ``_noskip``)
decode and encode as exact inverses. The search space needs two choices the
official grammar lacks, so two optional bare tokens are added; official strings
never contain them and are unaffected:

* conv op: ``conv`` (regular KxK conv) or ``dsconv`` (depthwise-separable conv,
  MobileNetV1 style), or any op registered with ``register_conv_op`` (by
  ``mnas.model.ops.register_op``, which holds its structure). Absent means
  MBConv (inverted bottleneck) with expansion ``e``.
* skip op: ``noskip`` (official) or ``poolskip`` (pooling residual). Absent
  means the identity residual where shapes allow it.

Canonical order: ``r k s e i o [se] [conv|dsconv] [noskip|poolskip]``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from mnas.search_space.errors import BlockStringError
from mnas.search_space.validation import check_choice, check_int, check_real

ConvOp = str  # a name of ``conv_op_names()``
SkipOp = Literal["identity", "none", "pool"]

SKIP_OPS: tuple[str, ...] = ("identity", "none", "pool")
_SKIP_TOKENS = {"noskip": "none", "poolskip": "pool"}
# Conv op -> whether it takes the expansion ratio ``e``. ``mbconv`` is the
# official op (no token); every other op is written as its bare name.
_BUILTIN_CONV_OPS: dict[str, bool] = {"mbconv": True, "conv": False, "dsconv": False}
_CONV_OPS: dict[str, bool] = dict(_BUILTIN_CONV_OPS)
_OP_NAME = re.compile(r"[a-z][a-z0-9]*")

# Upper bounds of a block's fields: far beyond any published network
# (EfficientNet-B7: 13 repeats after depth scaling; MnasNet-D1: kernel 7,
# expansion 9; widest built layer 3,840 channels), low enough that the spec
# alone bounds the built network (see ``ArchSpec``).
MAX_REPEATS = 64
MAX_KERNEL_SIZE = 15
MAX_STRIDE = 4
MAX_EXPAND_RATIO = 16
#: Widest filter count, declared or built (after width scaling, expansion
#: included).
MAX_FILTERS = 16384
#: Smallest non-zero squeeze-excite ratio: written without an exponent, so
#: that it reads back in the block-string grammar (``se0.0001``).
MIN_SE_RATIO = 1e-4
#: Longest block string (a canonical one is under 50 characters).
MAX_BLOCK_STRING_LENGTH = 256


def conv_op_names() -> tuple[str, ...]:
    """Every conv op a block may name, built-in ones first."""
    return tuple(_CONV_OPS)


def conv_op_expands(conv_op: str) -> bool:
    """Whether ``conv_op`` takes the expansion ratio (only then may ``e`` be > 1)."""
    return _CONV_OPS[conv_op]


def register_conv_op(name: str, expands: bool) -> None:
    """Makes ``name`` a conv op of blocks and block strings (its bare token).

    Only the name is data here; ``mnas.model.ops.register_op`` calls this with
    the op's structure, so use that one."""
    if not isinstance(name, str) or not _OP_NAME.fullmatch(name):
        raise BlockStringError(
            f"conv op name must be lower-case letters and digits, got {name!r}"
        )
    if name in _CONV_OPS:
        raise BlockStringError(f"conv op {name!r} is already registered")
    if name in _SKIP_TOKENS or _field_of(name) is not None:
        raise BlockStringError(
            f"conv op name {name!r} would read as a block-string field or skip"
        )
    _CONV_OPS[name] = bool(expands)


def unregister_conv_op(name: str) -> None:
    """Undoes ``register_conv_op`` (built-in ops stay)."""
    if name in _BUILTIN_CONV_OPS:
        raise BlockStringError(f"conv op {name!r} is built in")
    if name not in _CONV_OPS:
        raise BlockStringError(f"conv op {name!r} is not registered")
    del _CONV_OPS[name]


@dataclasses.dataclass(frozen=True)
class BlockArgs:
    """One block: ``num_repeat`` identical layers; the first carries the stride."""

    num_repeat: int
    kernel_size: int
    stride: int
    expand_ratio: int
    input_filters: int
    output_filters: int
    se_ratio: float = 0.0
    conv_op: ConvOp = "mbconv"
    skip: SkipOp = "identity"

    def __post_init__(self) -> None:
        def set_checked(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        for name, high in _INT_BOUNDS.items():
            value = getattr(self, name)
            set_checked(name, check_int(name, value, 1, high, error=BlockStringError))
        if self.kernel_size % 2 == 0:
            raise BlockStringError(f"kernel_size must be odd, got {self.kernel_size}")
        se_ratio = check_real(
            "se_ratio", self.se_ratio, 0.0, 1.0, error=BlockStringError
        )
        if 0 < se_ratio < MIN_SE_RATIO:
            raise BlockStringError(
                f"se_ratio must be 0 or in [{MIN_SE_RATIO:g}, 1], got {se_ratio!r}"
            )
        set_checked("se_ratio", se_ratio)
        check_choice("conv_op", self.conv_op, conv_op_names(), error=BlockStringError)
        check_choice("skip", self.skip, SKIP_OPS, error=BlockStringError)
        if not conv_op_expands(self.conv_op) and self.expand_ratio != 1:
            raise BlockStringError(
                f"expand_ratio must be 1 for conv_op {self.conv_op!r}, "
                f"got {self.expand_ratio}"
            )

    @property
    def has_se(self) -> bool:
        return self.se_ratio > 0

    def replace(self, **changes) -> BlockArgs:
        return dataclasses.replace(self, **changes)

    def to_string(self) -> str:
        return encode_block_string(self)


#: Integer fields -> their upper bound (all are >= 1).
_INT_BOUNDS = {
    "num_repeat": MAX_REPEATS,
    "kernel_size": MAX_KERNEL_SIZE,
    "stride": MAX_STRIDE,
    "expand_ratio": MAX_EXPAND_RATIO,
    "input_filters": MAX_FILTERS,
    "output_filters": MAX_FILTERS,
}

# ASCII digits only: ``\d`` and ``int()`` also accept other scripts' digits
# (``k\uff13`` would read as 3 and encode as ``k3``).
_FIELD_PATTERNS = {
    "r": re.compile(r"r([0-9]+)"),
    "k": re.compile(r"k([0-9]+)"),
    "s": re.compile(r"s([0-9])([0-9])"),
    "e": re.compile(r"e([0-9]+)"),
    "i": re.compile(r"i([0-9]+)"),
    "o": re.compile(r"o([0-9]+)"),
    "se": re.compile(r"se([0-9]*\.?[0-9]+)"),
}
_FIELD_NAMES = {
    "r": "repeats (r)",
    "k": "kernel (k)",
    "s": "stride (s)",
    "e": "expansion (e)",
    "i": "input filters (i)",
    "o": "output filters (o)",
    "se": "squeeze-excite ratio (se)",
}
_FIELD_FORMS = {
    "r": "r and ASCII digits, e.g. r2",
    "k": "k and ASCII digits, e.g. k3",
    "s": "s and two equal ASCII digits, e.g. s22",
    "e": "e and ASCII digits, e.g. e6",
    "i": "i and ASCII digits, e.g. i16",
    "o": "o and ASCII digits, e.g. o24",
    "se": "se and a decimal number, e.g. se0.25",
}
_REQUIRED = ("r", "k", "s", "e", "i", "o")


def _field_of(token: str) -> str | None:
    if token.startswith("se"):
        return "se"
    return token[:1] if token[:1] in _FIELD_PATTERNS else None


def decode_block_string(block_string: str) -> BlockArgs:
    """Parses one block string; errors name the offending field."""
    if not isinstance(block_string, str):
        raise BlockStringError(
            f"block string must be a str, got {type(block_string).__name__}"
        )
    if len(block_string) > MAX_BLOCK_STRING_LENGTH:
        raise BlockStringError(
            f"block string must be at most {MAX_BLOCK_STRING_LENGTH} characters, "
            f"got {len(block_string)}"
        )
    text = block_string.strip()
    if not text:
        raise BlockStringError("empty block string")
    values: dict[str, str | tuple[str, str]] = {}
    conv_op = "mbconv"
    skip = "identity"
    for token in text.split("_"):
        if not token:
            raise BlockStringError(f"empty field in block string {block_string!r}")
        if token in _CONV_OPS and token != "mbconv":
            if conv_op != "mbconv":
                raise BlockStringError(
                    f"conv op given twice in block string {block_string!r}"
                )
            conv_op = token
            continue
        if token in _SKIP_TOKENS:
            if skip != "identity":
                raise BlockStringError(
                    f"skip op given twice in block string {block_string!r}"
                )
            skip = _SKIP_TOKENS[token]
            continue
        key = _field_of(token)
        if key is None:
            raise BlockStringError(
                f"unknown field {token!r} in block string {block_string!r}"
            )
        match = _FIELD_PATTERNS[key].fullmatch(token)
        if match is None:
            raise BlockStringError(
                f"malformed {_FIELD_NAMES[key]} field {token!r} in block string "
                f"{block_string!r} (expected {_FIELD_FORMS[key]})"
            )
        if key in values:
            raise BlockStringError(
                f"{_FIELD_NAMES[key]} given twice in block string {block_string!r}"
            )
        values[key] = match.groups() if key == "s" else match.group(1)
    missing = [_FIELD_NAMES[k] for k in _REQUIRED if k not in values]
    if missing:
        raise BlockStringError(
            f"block string {block_string!r} is missing {', '.join(missing)}"
        )
    stride_h, stride_w = values["s"]
    if stride_h != stride_w:
        raise BlockStringError(
            f"stride (s) field must be square (e.g. s22), got s{stride_h}{stride_w} "
            f"in block string {block_string!r}"
        )
    se_text = values.get("se")
    se_ratio = float(se_text) if se_text is not None else 0.0
    if se_text is not None and not MIN_SE_RATIO <= se_ratio <= 1.0:
        raise BlockStringError(
            f"squeeze-excite ratio (se) must be in [{MIN_SE_RATIO:g}, 1], got "
            f"{se_text} in block string {block_string!r}"
        )
    try:
        return BlockArgs(
            num_repeat=int(values["r"]),
            kernel_size=int(values["k"]),
            stride=int(stride_h),
            expand_ratio=int(values["e"]),
            input_filters=int(values["i"]),
            output_filters=int(values["o"]),
            se_ratio=se_ratio,
            conv_op=conv_op,  # type: ignore[arg-type]
            skip=skip,  # type: ignore[arg-type]
        )
    except BlockStringError as error:
        raise BlockStringError(f"{error} in block string {block_string!r}") from None


def _format_ratio(ratio: float) -> str:
    text = repr(float(ratio))
    return text[:-2] if text.endswith(".0") else text


def encode_block_string(block: BlockArgs) -> str:
    """Writes the canonical block string; ``decode_block_string`` inverts it."""
    parts = [
        f"r{block.num_repeat}",
        f"k{block.kernel_size}",
        f"s{block.stride}{block.stride}",
        f"e{block.expand_ratio}",
        f"i{block.input_filters}",
        f"o{block.output_filters}",
    ]
    if block.se_ratio > 0:
        parts.append(f"se{_format_ratio(block.se_ratio)}")
    if block.conv_op != "mbconv":
        parts.append(block.conv_op)
    if block.skip == "none":
        parts.append("noskip")
    elif block.skip == "pool":
        parts.append("poolskip")
    return "_".join(parts)


def decode_block_strings(
    block_strings: list[str] | tuple[str, ...],
) -> tuple[BlockArgs, ...]:
    return tuple(decode_block_string(s) for s in block_strings)


def encode_block_strings(
    blocks: tuple[BlockArgs, ...] | list[BlockArgs],
) -> tuple[str, ...]:
    return tuple(encode_block_string(b) for b in blocks)
