"""Imports an official MnasNet checkpoint (tensorflow/tpu) into a Keras model.

Users compare their searched models with the published MnasNet checkpoints,
so those must load into exactly the network ``mnas.model.builder`` builds.
The mapping from checkpoint variable to Keras weight is explicit
(``mnas.model.official.names``), and the import is strict: every Keras weight is
assigned exactly once, every checkpoint tensor is either used or ignored for a
stated reason (optimizer slot, step counter, raw variable shadowed by its
moving average), and any missing, misshapen or unexpected tensor fails with
the names involved. A checkpoint with moving averages must have one for every
weight, as the official evaluation (``ema.variables_to_restore``) requires;
a mixed load is only done when asked (``allow_missing_ema``).

Official models take images normalized with the ImageNet mean and standard
deviation (``mnas.train.evaluation.OFFICIAL``), not this project's [-1, 1] inputs.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from mnas.model.official import names
from mnas.search_space import ArchSpec


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


class MissingTensorError(CheckpointError):
    """A Keras weight's official tensor is not in the checkpoint."""


class MissingMovingAverageError(MissingTensorError):
    """The checkpoint has moving averages, but not for every weight."""


class ShapeMismatchError(CheckpointError):
    """A checkpoint tensor's shape differs from its Keras weight's."""


class UnexpectedTensorError(CheckpointError):
    """The checkpoint holds tensors that are neither used nor ignorable."""


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What an import did: the source of each Keras weight and what was skipped.

    Attributes:
      model_name: the checkpoint's model scope (``mnasnet-a1``...).
      layout: ``keras`` or ``legacy`` naming (see ``mnas.model.official.names``).
      assigned: Keras weight path -> checkpoint tensor it was set from.
      ignored: checkpoint tensor -> why it was not used.
      ema: whether moving-average shadows were used.
      missing_ema: official tensors loaded raw because their moving average
        was missing (only with ``allow_missing_ema``).
    """

    model_name: str
    layout: str
    assigned: dict[str, str]
    ignored: dict[str, str]
    ema: bool
    missing_ema: tuple[str, ...] = ()


def resolve_checkpoint(path: str) -> str:
    """A checkpoint prefix from a prefix or a folder (its latest checkpoint)."""
    import tensorflow as tf

    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        indexes = sorted(f for f in os.listdir(path) if f.endswith(".index"))
        if len(indexes) == 1:  # Archived checkpoints often lack the 'checkpoint' file.
            return os.path.join(path, indexes[0][: -len(".index")])
        raise CheckpointError(f"no TF checkpoint in folder '{path}'")
    if os.path.exists(path + ".index"):
        return path
    raise CheckpointError(f"no TF checkpoint at '{path}' (no '{path}.index')")


def list_tensors(path: str) -> dict[str, tuple[int, ...]]:
    """Checkpoint tensor name -> shape."""
    import tensorflow as tf

    prefix = resolve_checkpoint(path)
    return {name: tuple(shape) for name, shape in tf.train.list_variables(prefix)}


def is_official_checkpoint(path: str) -> bool:
    """True for a TF checkpoint holding an official ``.../mnas_stem/...`` scope."""
    try:
        tensors = list_tensors(path)
    except (CheckpointError, ValueError, OSError):
        return False
    return any(True for _ in names.iter_model_names(list(tensors)))


def detect_model_name(path: str) -> str:
    """The model scope of an official checkpoint (``mnasnet-a1``...)."""
    found = list(names.iter_model_names(list(list_tensors(path))))
    if len(found) != 1:
        raise CheckpointError(
            f"checkpoint '{path}' should hold exactly one official model scope "
            f"(<model>/mnas_stem/...), found {found or 'none'}"
        )
    return found[0]


def load_official_weights(
    model,
    spec: ArchSpec,
    path: str,
    *,
    model_name: str | None = None,
    layout: str | None = None,
    prefer_ema: bool = True,
    allow_missing_ema: bool = False,
) -> ImportReport:
    """Assigns the official checkpoint at ``path`` to ``model`` (built from ``spec``).

    Args:
      model: a Keras model from ``build_model(spec, ...)``.
      spec: its architecture (official MBConv blocks only).
      path: checkpoint prefix or folder.
      model_name: the checkpoint's model scope; detected when None.
      layout: ``keras`` or ``legacy`` naming; the one the checkpoint matches
        best when None.
      prefer_ema: use the ``.../ExponentialMovingAverage`` shadows, as the
        official evaluation does, when the checkpoint has any (without any, the
        raw weights load and the report says so).
      allow_missing_ema: with ``prefer_ema``, load the raw value of a weight
        whose shadow is missing instead of refusing the checkpoint; the
        report lists those weights (``missing_ema``).

    Raises:
      MissingTensorError, MissingMovingAverageError, ShapeMismatchError,
        UnexpectedTensorError: the checkpoint does not fit; the message names
        the tensors and weights.
    """
    import tensorflow as tf

    prefix = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
    model_name = model_name or detect_model_name(prefix)
    entries, layout = _pick_layout(spec, model_name, layout, shapes)

    weights = {w.path: w for w in model.weights}
    mapped = {entry.keras for entry in entries}
    unmapped = sorted(set(weights) - mapped)
    if unmapped:
        raise CheckpointError(
            f"Keras weights with no official counterpart: {', '.join(unmapped)}"
        )
    missing = [e for e in entries if e.official not in shapes]
    if missing:
        listed = _first_ten(
            [f"'{e.official}' (for Keras weight '{e.keras}')" for e in missing], "; "
        )
        raise MissingTensorError(
            f"checkpoint '{prefix}' lacks {len(missing)} tensor(s): {listed}"
        )

    use_ema = prefer_ema and any(
        e.official + names.EMA_SUFFIX in shapes for e in entries
    )
    no_shadow = [e for e in entries if e.official + names.EMA_SUFFIX not in shapes]
    if use_ema and no_shadow and not allow_missing_ema:
        listed = _first_ten(
            [
                f"'{e.official}{names.EMA_SUFFIX}' (for Keras weight '{e.keras}')"
                for e in no_shadow
            ],
            "; ",
        )
        raise MissingMovingAverageError(
            f"checkpoint '{prefix}' holds moving averages but lacks "
            f"{len(no_shadow)} of them: {listed}; the official evaluation "
            "fails on a missing moving average (allow_missing_ema loads the raw "
            "weights there)"
        )

    assigned: dict[str, str] = {}
    ignored: dict[str, str] = {}
    values: list[tuple[object, np.ndarray]] = []
    for entry in entries:
        if entry.keras not in weights:
            raise CheckpointError(
                f"checkpoint tensor '{entry.official}' maps to Keras weight "
                f"'{entry.keras}', which the model does not have"
            )
        source = entry.official
        shadow = entry.official + names.EMA_SUFFIX
        if use_ema and shadow in shapes:
            source = shadow
            ignored[entry.official] = f"shadowed by its moving average '{shadow}'"
        elif shadow in shapes:
            ignored[shadow] = "moving average not used (prefer_ema=False)"
        weight = weights[entry.keras]
        expected = tuple(weight.shape)
        if shapes[source] != expected:
            raise ShapeMismatchError(
                f"checkpoint tensor '{source}' has shape {shapes[source]} but "
                f"Keras weight '{entry.keras}' has shape {expected}"
                + _width_hint(spec, entry)
            )
        if entry.keras in assigned:
            raise CheckpointError(f"Keras weight '{entry.keras}' is mapped twice")
        assigned[entry.keras] = source
        values.append((weight, reader.get_tensor(source)))

    used = set(assigned.values()) | set(ignored)
    unexpected = []
    for name in sorted(shapes):
        if name in used:
            continue
        if names.is_ignored(name):
            ignored[name] = "optimizer slot or counter"
        else:
            unexpected.append(name)
    if unexpected:
        listed = _first_ten([f"'{n}'" for n in unexpected], ", ")
        raise UnexpectedTensorError(
            f"checkpoint '{prefix}' holds {len(unexpected)} tensor(s) that fit no "
            f"Keras weight of {spec.name}: {listed}"
        )
    for weight, value in values:  # Only once everything is known to fit.
        weight.assign(value)
    missing_ema = tuple(e.official for e in no_shadow) if use_ema else ()
    return ImportReport(model_name, layout, assigned, ignored, use_ema, missing_ema)


def _first_ten(items: list[str], separator: str) -> str:
    """Up to ten items, and how many more, for an error message."""
    more = f" and {len(items) - 10} more" if len(items) > 10 else ""
    return separator.join(items[:10]) + more


def _width_hint(spec: ArchSpec, entry: names.NameEntry) -> str:
    """Why a layer's shape may differ: scaled checkpoints keep the base's scope."""
    if entry.keras.startswith("classifier/"):  # The class count, not the width.
        return ""
    return (
        f"; the model was built at width {spec.width_multiplier:g}, and a "
        "width-scaled official checkpoint keeps its base model's scope (e.g. "
        "'mnasnet-a1' for x0.75): build it with the checkpoint's width "
        "multiplier (--width_multiplier)"
    )


def _pick_layout(
    spec: ArchSpec,
    model_name: str,
    layout: str | None,
    shapes: dict[str, tuple[int, ...]],
) -> tuple[list[names.NameEntry], str]:
    """The naming layout whose names the checkpoint holds (most hits wins)."""
    candidates = [layout] if layout else list(names.LAYOUTS)
    best: tuple[int, list[names.NameEntry], str] | None = None
    for candidate in candidates:
        entries = names.name_entries(spec, model_name, candidate)
        hits = sum(e.official in shapes for e in entries)
        if best is None or hits > best[0]:
            best = (hits, entries, candidate)
    assert best is not None
    return best[1], best[2]


def official_tensors(
    spec: ArchSpec,
    model,
    model_name: str | None = None,
    layout: str = "keras",
) -> dict[str, np.ndarray]:
    """``model``'s weights under their official names (the inverse mapping).

    Lets tests and users write a checkpoint with the official layout.
    """
    weights = {w.path: w for w in model.weights}
    return {
        entry.official: np.asarray(weights[entry.keras].numpy())
        for entry in names.name_entries(spec, model_name or spec.name, layout)
    }


def write_checkpoint(prefix: str, tensors: dict[str, np.ndarray]) -> str:
    """Writes ``tensors`` as a TF (V2) checkpoint with exactly these names.

    ``tf.train.list_variables(prefix)`` then lists exactly ``tensors``' keys,
    as a TF1 ``Saver`` would have written them.
    """
    import tensorflow as tf

    if not tensors:
        raise CheckpointError("nothing to write")
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    keys = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=keys,
        shape_and_slices=[""] * len(keys),
        tensors=[tf.constant(tensors[k]) for k in keys],
    )
    return prefix
