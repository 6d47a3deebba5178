"""mnas-eval, run as a subprocess on a small image folder built here."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnas.model.builder import build_model
from mnas.model.official.checkpoint import official_tensors, write_checkpoint
from mnas.model.weights import WeightsMeta, save_weights
from mnas.search_space import parse_arch
from mnas.train.evaluation import EvalConfig, evaluate, keras_predictor

ARCH = "r1_k3_s11_e1_i16_o16_noskip,r1_k3_s22_e3_i16_o24_se0.25"
RES = 32


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "mnas.bin.eval", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _image_folder(root) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            size = rng.integers(24, 64, 2)
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            (root / name / f"{i}.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())


def _accuracies(stdout: str) -> tuple[float, float, int]:
    match = re.search(r"top-1 ([\d.]+), top-5 ([\d.]+) over (\d+) images", stdout)
    assert match, stdout
    return float(match[1]), float(match[2]), int(match[3])


def test_native_weights_on_an_image_folder(tmp_path) -> None:
    _image_folder(tmp_path / "images")
    spec = parse_arch(ARCH).replace(resolution=RES, stem_filters=16, name="tiny")
    keras.utils.set_random_seed(0)
    model = build_model(spec, num_classes=3)
    save_weights(model, WeightsMeta(spec, 3), str(tmp_path / "w"))
    result = _run(
        f"--checkpoint={tmp_path / 'w'}",
        f"--eval_dataset=folder:{tmp_path / 'images'}",
        "--eval_batch_size=5",
        "--progress_every=1",
        f"--output_dir={tmp_path / 'out'}",
    )
    assert result.returncode == 0, result.stderr
    top1, top5, count = _accuracies(result.stdout)
    expected, _ = evaluate(
        keras_predictor(model),
        EvalConfig(
            f"folder:{tmp_path / 'images'}", image_size=RES, preprocessing="mnas"
        ),
    )
    assert (top1, top5, count) == (round(expected.top1, 4), 1.0, 12)
    assert "mnas normalization" in result.stdout
    assert "10/12 images" in result.stdout  # Progress after the second batch.
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["eval"]["crop_padding"] == 32
    assert config["arch"]["blocks"] == list(spec.block_strings)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["num_examples"] == 12


def test_official_checkpoint_is_detected(tmp_path) -> None:
    _image_folder(tmp_path / "images")
    spec = parse_arch(ARCH).replace(resolution=RES)
    model = build_model(spec, num_classes=3)
    tensors = official_tensors(spec, model, model_name="tiny-net")
    write_checkpoint(str(tmp_path / "ckpt" / "model.ckpt-7"), tensors)
    args = (
        f"--checkpoint={tmp_path / 'ckpt'}",
        f"--eval_dataset=folder:{tmp_path / 'images'}",
    )
    result = _run(*args, f"--arch={ARCH}", f"--resolution={RES}", "--num_classes=3")
    assert result.returncode == 0, result.stderr
    assert "official checkpoint" in result.stdout and "keras names" in result.stdout
    assert "official normalization" in result.stdout
    _, _, count = _accuracies(result.stdout)
    assert count == 12
    # Its model scope is no preset, so the architecture must be given.
    refused = _run(*args)
    assert refused.returncode != 0
    assert "holds model 'tiny-net', which is no preset" in refused.stderr


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["--checkpoint=c", "--dataset=imagenet2012", "--batch_size=8"], 2,
         "--dataset was renamed: use --eval_dataset"),
        (["--checkpoint=c", "--eval_dataset=x", "--batch_size=8"], 2,
         "--batch_size was renamed: use --eval_batch_size"),
        (["--eval_dataset=x"], 1, "--checkpoint is required"),
        (["--checkpoint=c"], 1,
         "--eval_dataset is required (imagenet2012, folder:<path>...)"),
        (["--checkpoint=c", "--eval_dataset=x", "--eval_batch_size=0"], 1,
         "--eval_batch_size must be >= 1, got 0"),
        (["--checkpoint=c", "--eval_dataset=x", "--width_multiplier=0.75"], 1,
         "--width_multiplier needs --arch (the checkpoint's own architecture is "
         "used as stored); e.g. --arch=mnasnet-a1 --width_multiplier=0.75 for an "
         "official x0.75 checkpoint"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line(cli, args, status, message):
    assert cli.refusal(*args, status=status) == f"mnas-eval: {message}"


def test_broken_weights_json_is_one_line_naming_it(cli, tmp_path):
    meta = tmp_path / "weights.json"
    meta.write_text('{"format_version": 1, "num_classes": 3}')  # no "arch"
    assert cli.refusal(f"--checkpoint={tmp_path}", "--eval_dataset=x") == (
        f"mnas-eval: weights file {str(meta)!r} must hold a JSON object with an "
        "'arch' object and an integer 'num_classes'"
    )


@pytest.mark.slow
def test_garbage_checkpoint_is_one_line_naming_it(cli, tmp_path):
    prefix = tmp_path / "model.ckpt-1"
    for suffix in (".index", ".data-00000-of-00001"):
        (tmp_path / f"model.ckpt-1{suffix}").write_bytes(b"\x00garbage" * 40)
    line = cli.refusal(
        f"--checkpoint={prefix}", "--checkpoint_format=official", "--eval_dataset=x"
    )
    assert line.startswith(f"mnas-eval: cannot read checkpoint {str(prefix)!r}: ")
