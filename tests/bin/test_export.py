"""mnas-export, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mnas.search_space import ArchSpec

# One small MBConv-free block keeps conversion to a few seconds.
TINY_ARCH = "r1_k3_s11_e1_i32_o16"


def _run(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "mnas.bin.export", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _interpreter_runs(path) -> tuple:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    output = interpreter.get_output_details()[0]
    return tuple(detail["shape"]), tuple(output["shape"])


def test_exports_float_and_int8_with_arch_json(tmp_path):
    result = _run(
        f"--arch={TINY_ARCH}",
        "--resolution=32",
        "--num_classes=10",
        "--quantize=none,int8",
        "--num_calibration_samples=4",
        f"--output_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    for name in ("custom_r32_float.tflite", "custom_r32_int8.tflite"):
        assert name in result.stdout
        assert _interpreter_runs(tmp_path / name) == ((1, 32, 32, 3), (1, 10))
    assert not (tmp_path / "custom_r32_dynamic.tflite").exists()
    assert "size / float" in result.stdout
    spec = ArchSpec.from_dict(json.loads((tmp_path / "custom_r32.json").read_text()))
    assert spec.block_strings == (TINY_ARCH,)
    assert spec.resolution == 32
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["quantize"] == ["none", "int8"]
    assert config["files"] == {
        "none": "custom_r32_float.tflite",
        "int8": "custom_r32_int8.tflite",
    }
    assert config["checkpoint"] is None
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.slow
def test_all_three_of_a_preset_with_digits_calibration(tmp_path):
    result = _run(
        "--arch=mnasnet-small",
        "--resolution=64",
        "--representative_dataset=digits",
        "--num_calibration_samples=16",
        "--name=small",
        f"--output_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    sizes = {
        q: (tmp_path / f"small_{q}.tflite").stat().st_size
        for q in ("float", "dynamic", "int8")
    }
    assert sizes["int8"] < 0.35 * sizes["float"]
    assert sizes["dynamic"] < 0.35 * sizes["float"]
    for q in sizes:
        assert _interpreter_runs(tmp_path / f"small_{q}.tflite")[0] == (1, 64, 64, 3)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["representative_dataset"] == "digits"


@pytest.mark.parametrize(
    "args, message",
    [
        ([f"--arch={TINY_ARCH}", "--quantize=foo"],
         "--quantize: unknown quantization 'foo'; choose from none,dynamic,int8"),
        ([f"--arch={TINY_ARCH}", "--quantize="],
         "--quantize is empty; choose from none,dynamic,int8"),
        ([f"--arch={TINY_ARCH}"], "--output_dir is required"),
        (["--output_dir=/tmp/x"],
         "--arch is required (a preset, block strings or an arch .json file)"),
        ([f"--arch={TINY_ARCH}", "--output_dir=/tmp/x", "--resolution=4"],
         "--resolution must be >= 8, got 4"),
        ([f"--arch={TINY_ARCH}", "--output_dir=/tmp/x", "--num_calibration_samples=0"],
         "--num_calibration_samples must be >= 1, got 0"),
        ([f"--arch={TINY_ARCH}", "--output_dir=/tmp/x",
          "--representative_dataset=eval"],
         "--representative_dataset=eval needs --eval_dataset"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(cli, args, message):
    assert cli.refusal(*args) == f"mnas-export: {message}"


def test_output_dir_that_is_a_file(cli, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    assert cli.refusal(f"--arch={TINY_ARCH}", f"--output_dir={target}") == (
        f"mnas-export: --output_dir is not a folder: {target}"
    )


def test_broken_weights_folder_is_refused_before_tensorflow_loads(cli, tmp_path):
    """weights.json of [] and one without "arch": one line naming the file."""
    folder = tmp_path / "w"
    folder.mkdir()
    meta = folder / "weights.json"
    for content in ("[]", '{"format_version": 1, "num_classes": 3}'):
        meta.write_text(content)
        assert cli.refusal(
            f"--checkpoint={folder}", f"--output_dir={tmp_path / 'out'}"
        ) == (
            f"mnas-export: weights file {str(meta)!r} must hold a JSON object with "
            "an 'arch' object and an integer 'num_classes'"
        )
    assert not (tmp_path / "out").exists()


def test_checkpoint_export_reports_accuracy_of_each_file(tmp_path):
    import keras
    import numpy as np
    import tensorflow as tf

    from mnas.model.builder import build_model
    from mnas.model.weights import WeightsMeta, save_weights
    from mnas.search_space import parse_arch

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
            data = tf.io.encode_jpeg(pixels).numpy()
            (tmp_path / "images" / name / f"{i}.jpg").write_bytes(data)
    spec = parse_arch(TINY_ARCH).replace(resolution=32, name="tiny")
    keras.utils.set_random_seed(0)
    save_weights(
        build_model(spec, num_classes=2), WeightsMeta(spec, 2), str(tmp_path / "w")
    )
    result = _run(
        f"--checkpoint={tmp_path / 'w'}",
        "--quantize=none,int8",
        "--representative_dataset=eval",
        f"--eval_dataset=folder:{tmp_path / 'images'}",
        f"--output_dir={tmp_path / 'out'}",
    )
    assert result.returncode == 0, result.stderr
    assert "mnas weights" in result.stdout
    assert "tiny_r32_int8.tflite" in result.stdout
    assert "top-1 agreement with keras" in result.stdout
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["keras"]["num_examples"] == 6
    assert report["none"]["agreement_with_keras"] == 1.0
    assert 0.0 <= report["int8"]["agreement_with_keras"] <= 1.0
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["checkpoint"] == str(tmp_path / "w")
    assert config["preprocessing"] == "mnas"
