"""Native weights: a trained model's weights with its architecture beside them.

A model found by ``mnas-search`` or trained by ``mnas-train`` must be
retrained, evaluated and exported later, possibly by another binary, so the
weights travel with what is needed to rebuild the network: the architecture
(block strings included), the class count and the input preprocessing.

Layout of a weights folder::

  <dir>/model.weights.h5   Keras weights (no pickle)
  <dir>/weights.json       arch, num_classes, preprocessing, sha256 of the .h5

Both files are written to a temporary name and renamed; ``weights.json`` is
written last and records the checksum of the weights it belongs to, so a
folder interrupted mid-write is refused on load rather than half-read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

from mnas.io.atomic import write_json_atomic
from mnas.search_space import ArchSpec

WEIGHTS_FILE = "model.weights.h5"
META_FILE = "weights.json"
FORMAT_VERSION = 1
PREPROCESSINGS = ("mnas", "official")
# Fields that do not change the weights' shapes or meaning.
_NON_STRUCTURAL = ("name", "resolution", "dropout_rate", "drop_connect_rate")


class WeightsError(ValueError):
    """A weights folder that is missing, damaged or for another architecture."""


class ArchMismatchError(WeightsError):
    """The stored architecture differs from the one asked for."""


@dataclasses.dataclass(frozen=True)
class WeightsMeta:
    """What is stored beside the weights.

    Attributes:
      arch: the architecture the weights belong to.
      num_classes: classifier width.
      preprocessing: ``'mnas'`` (pixels / 127.5 - 1) or ``'official'``
        (ImageNet mean / standard deviation), what the model was trained on.
      source: where the weights came from (free text: a checkpoint path...).
      extra: anything else worth keeping (metrics, class names).
    """

    arch: ArchSpec
    num_classes: int
    preprocessing: str = "mnas"
    source: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preprocessing not in PREPROCESSINGS:
            raise WeightsError(
                f"preprocessing must be one of {PREPROCESSINGS}, "
                f"got {self.preprocessing!r}"
            )
        if self.num_classes < 1:
            raise WeightsError(f"num_classes must be >= 1, got {self.num_classes}")


def is_native_weights(path: str) -> bool:
    return os.path.isfile(os.path.join(path, META_FILE))


def save_weights(model, meta: WeightsMeta, directory: str) -> str:
    """Writes ``model``'s weights and ``meta`` into ``directory``; returns it."""
    if tuple(model.output_shape)[-1] != meta.num_classes:
        raise WeightsError(
            f"model has {tuple(model.output_shape)[-1]} outputs, meta says "
            f"{meta.num_classes} classes"
        )
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, WEIGHTS_FILE)
    partial = os.path.join(directory, "partial." + WEIGHTS_FILE)  # Keras wants *.h5.
    model.save_weights(partial)
    digest = _sha256(partial)
    os.replace(partial, path)
    record = {
        "format_version": FORMAT_VERSION,
        "arch": meta.arch.to_dict(),
        "num_classes": meta.num_classes,
        "preprocessing": meta.preprocessing,
        "source": meta.source,
        "extra": meta.extra,
        "weights_file": WEIGHTS_FILE,
        "sha256": digest,
    }
    write_json_atomic(os.path.join(directory, META_FILE), record)
    return directory


def read_meta(directory: str) -> WeightsMeta:
    """The stored metadata; checks the weights file is the one it describes."""
    meta_path = os.path.join(directory, META_FILE)
    try:
        with open(meta_path, encoding="utf-8") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        raise WeightsError(f"'{directory}' holds no {META_FILE}") from None
    except json.JSONDecodeError as error:
        raise WeightsError(f"'{meta_path}' is not valid JSON: {error}") from None
    if record.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            f"'{meta_path}' has format version {record.get('format_version')!r}; "
            f"this mnas reads {FORMAT_VERSION}"
        )
    weights_path = os.path.join(directory, record.get("weights_file", WEIGHTS_FILE))
    if not os.path.isfile(weights_path):
        raise WeightsError(f"'{directory}' has {META_FILE} but no {WEIGHTS_FILE}")
    if _sha256(weights_path) != record.get("sha256"):
        raise WeightsError(
            f"'{weights_path}' does not match the checksum in {META_FILE} "
            "(an interrupted write or a replaced file)"
        )
    return WeightsMeta(
        arch=ArchSpec.from_dict(record["arch"]),
        num_classes=int(record["num_classes"]),
        preprocessing=record.get("preprocessing", "mnas"),
        source=record.get("source", ""),
        extra=record.get("extra", {}),
    )


def check_arch(stored: ArchSpec, wanted: ArchSpec) -> None:
    """Raises ``ArchMismatchError`` naming every structural difference."""
    a, b = stored.to_dict(), wanted.to_dict()
    diffs = [
        f"{key}: stored {a[key]!r}, asked {b[key]!r}"
        for key in sorted(a)
        if key not in _NON_STRUCTURAL and a[key] != b.get(key)
    ]
    if diffs:
        raise ArchMismatchError(
            "the weights belong to another architecture: " + "; ".join(diffs)
        )


def load_weights(
    directory: str,
    spec: ArchSpec | None = None,
    input_shape: tuple[int, int, int] | None = None,
    classifier_activation: str | None = "softmax",
):
    """Rebuilds the stored architecture and loads its weights.

    Args:
      directory: a folder written by ``save_weights``.
      spec: if given, must match the stored architecture (resolution, name and
        dropout may differ); its resolution and dropout are used.
      input_shape: overrides the input shape (the network is fully
        convolutional up to global pooling).

    Returns:
      ``(model, meta)``.
    """
    from mnas.model.builder import build_model

    meta = read_meta(directory)
    if spec is not None:
        check_arch(meta.arch, spec)
    build_spec = spec or meta.arch
    shape = input_shape or (build_spec.resolution, build_spec.resolution, 3)
    model = build_model(
        build_spec, shape, meta.num_classes, classifier_activation=classifier_activation
    )
    model.load_weights(os.path.join(directory, WEIGHTS_FILE))
    return model, meta


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model rebuilt from any supported checkpoint, with how to feed it.

    Attributes:
      model: the Keras model, weights loaded.
      spec: its architecture.
      preprocessing: ``'mnas'`` or ``'official'`` input normalization.
      kind: ``'native'`` or ``'official'``.
      description: what was loaded, for logs and config.json.
    """

    model: Any
    spec: ArchSpec
    preprocessing: str
    kind: str
    description: str


CHECKPOINT_FORMATS = ("auto", "native", "official")


def load_any(
    path: str,
    spec: ArchSpec | None = None,
    *,
    input_shape: tuple[int, int, int] | None = None,
    checkpoint_format: str = "auto",
    num_classes: int = 1000,
    prefer_ema: bool = True,
    allow_missing_ema: bool = False,
    classifier_activation: str | None = "softmax",
) -> LoadedModel:
    """Loads a native weights folder or an official MnasNet checkpoint.

    ``auto`` tells them apart by ``weights.json`` (native) or official variable
    names. An official checkpoint needs ``spec`` unless its model scope names
    a preset (``mnasnet-a1``, ``mnasnet-b1``...). ``prefer_ema`` and
    ``allow_missing_ema`` are passed to the official import
    (``mnas.model.official.checkpoint.load_official_weights``).
    """
    if checkpoint_format not in CHECKPOINT_FORMATS:
        raise WeightsError(
            f"checkpoint format must be one of {CHECKPOINT_FORMATS}, "
            f"got {checkpoint_format!r}"
        )
    from mnas.model.official import checkpoint as official

    if checkpoint_format == "auto":
        if is_native_weights(path):
            checkpoint_format = "native"
        elif official.is_official_checkpoint(path):
            checkpoint_format = "official"
        else:
            raise WeightsError(
                f"'{path}' is neither an mnas weights folder (no {META_FILE}) nor "
                "an official MnasNet checkpoint (no <model>/mnas_stem/... tensors)"
            )
    if checkpoint_format == "native":
        model, meta = load_weights(path, spec, input_shape, classifier_activation)
        return LoadedModel(
            model,
            spec or meta.arch,
            meta.preprocessing,
            "native",
            f"mnas weights '{path}' ({meta.arch.name})",
        )

    from mnas.model.builder import build_model
    from mnas.search_space import get_preset, preset_names

    model_name = official.detect_model_name(path)
    if spec is None:
        if model_name not in preset_names():
            raise WeightsError(
                f"official checkpoint '{path}' holds model '{model_name}', which is "
                "no preset: give its architecture (--arch)"
            )
        spec = get_preset(model_name)
    shape = input_shape or (spec.resolution, spec.resolution, 3)
    model = build_model(
        spec, shape, num_classes, classifier_activation=classifier_activation
    )
    report = official.load_official_weights(
        model,
        spec,
        path,
        model_name=model_name,
        prefer_ema=prefer_ema,
        allow_missing_ema=allow_missing_ema,
    )
    ema = "moving averages" if report.ema else "raw weights"
    if report.missing_ema:
        ema += f", {len(report.missing_ema)} raw where the moving average is missing"
    return LoadedModel(
        model,
        spec,
        "official",
        "official",
        f"official checkpoint '{path}' ({model_name}, {report.layout} names, {ema})",
    )
