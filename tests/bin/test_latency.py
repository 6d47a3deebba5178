"""mnas-latency run as a subprocess, as a user runs it (the config layer is
tested in tests/latency/test_config.py and tests/flags/test_latency.py).

Measuring a given ``.tflite`` and every refusal need no TensorFlow in the
child, so those runs take a couple of seconds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from mnas.latency.backends.host import HostBackend


def _run(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "mnas.bin.latency", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    from mnas.latency.export import export_tflite
    from mnas.testing.latency_models import tiny_convnet

    path = tmp_path_factory.mktemp("tflite") / "tiny model.tflite"
    path.write_bytes(export_tflite(tiny_convnet(input_size=16, width=8)))
    return str(path)


# -- the binary --------------------------------------------------------------


def test_measures_a_tflite_file_then_hits_the_cache(tiny_tflite, tmp_path):
    cache = str(tmp_path / "latency.sqlite")
    args = (
        f"--tflite={tiny_tflite}",
        "--num_runs=3",
        f"--latency_cache={cache}",
        "--nolatency_adaptive",
    )
    first = _run(*args)
    assert first.returncode == 0, first.stderr
    header = first.stdout.splitlines()
    assert any(
        line.split()[:4] == ["device", "repeat", "median", "ms"] for line in header
    )
    for column in ("p5", "p95", "runs", "init ms", "first run ms", "cache"):
        assert column in first.stdout
    assert "miss" in first.stdout
    assert "fingerprint: backend=host" in first.stdout
    assert "threads=1" in first.stdout
    assert re.search(
        r"latency #0 repeat 1: [\d.]+ ms \(median of \d+ runs in one round: no "
        r"interval, stability unknown\)",
        first.stdout,
    )
    second = _run(*args)
    assert second.returncode == 0, second.stderr
    assert " hit" in second.stdout
    bypassed = _run(*args, "--no_latency_cache")
    assert bypassed.returncode == 0, bypassed.stderr
    assert "bypassed" in bypassed.stdout


#: An adaptive result's line: interval, rounds, spread, conditions, verdict.
ADAPTIVE_LINE = (
    r"latency #0 repeat 1: [\d.]+ ms ±[\d.]+% \(95% CI [\d.]+-[\d.]+, \d+ "
    r"rounds, spread \d+%, load [\d.]+, steal [\d.]+%, freq [^)]+\) "
    r"(stable|UNSTABLE: .+)"
)


def test_an_adaptive_result_prints_its_interval_and_is_cached_whole(
    tiny_tflite, tmp_path
):
    from mnas.latency.cache import LatencyCache, sha256_file

    cache, out = str(tmp_path / "latency.sqlite"), tmp_path / "out"
    args = (
        f"--tflite={tiny_tflite}",
        "--num_runs=3",
        f"--latency_cache={cache}",
        "--latency_max_seconds=3",
    )
    first = _run(*args, f"--output_dir={out}")
    assert first.returncode == 0, first.stderr
    (summary,) = [
        line for line in first.stdout.splitlines() if line.startswith("latency #0")
    ]
    assert re.fullmatch(ADAPTIVE_LINE, summary), summary
    (written,) = json.loads((out / "latency.json").read_text())
    uncertainty = written["uncertainty"]
    assert uncertainty["low_ms"] <= written["median_ms"] <= uncertainty["high_ms"]
    assert uncertainty["rounds"] == len(uncertainty["round_ms"]) >= 1
    assert set(uncertainty["conditions"]) >= {"load_avg", "steal", "busy_others"}
    (cached,) = [
        LatencyCache(cache).get(sha256_file(tiny_tflite), fp)
        for fp in [HostBackend(num_threads=1).fingerprint()]
    ]
    assert cached.to_dict() == written
    second = _run(*args)
    assert second.returncode == 0, second.stderr
    if uncertainty["stable"]:  # answered from the cache, interval and all
        assert " hit" in second.stdout and summary in second.stdout.splitlines()
    else:  # an unstable result is never answered from the cache
        assert " re-measured" in second.stdout


def test_repeats_and_output_dir(tiny_tflite, tmp_path):
    out = tmp_path / "out"
    result = _run(
        f"--tflite={tiny_tflite}",
        "--num_runs=3",
        "--repeats=3",
        "--latency_cache=",
        f"--output_dir={out}",
    )
    assert result.returncode == 0, result.stderr
    assert "medians over 3 measurements" in result.stdout
    assert result.stdout.count("fresh") == 3
    results = json.loads((out / "latency.json").read_text())
    assert len(results) == 3 and all(r["runs"] >= 3 for r in results)
    config = json.loads((out / "config.json").read_text())
    assert config["latency"]["backend"] == "host"
    assert config["latency"]["cache_path"] is None
    assert config["arch"] is None


@pytest.mark.slow
def test_builds_exports_and_measures_an_arch(tmp_path):
    result = _run(
        "--arch=mnasnet-small",
        "--resolution=64",
        "--num_runs=3",
        "--quantize=int8",
        f"--latency_cache={tmp_path / 'c.sqlite'}",
        f"--output_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    assert "exported mnasnet-small at 64x64, quantization int8" in result.stdout
    assert "architecture: mnasnet-small  resolution: 64  quantization: int8" in (
        result.stdout
    )
    assert (tmp_path / "mnasnet-small_int8.tflite").is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["arch"]["resolution"] == 64 and config["quantize"] == "int8"


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["--latency_backend=gpu", "--tflite=x.tflite"], 2,
         "flag --latency_backend=gpu: value should be one of "
         "<host|litert-benchmark|benchmark_model>"),
        (["--tflite=/nonexistent/m.tflite"], 1,
         "--tflite file not found: /nonexistent/m.tflite"),
        (["--arch=mnasnet-a1", "--quantize=foo"], 1,
         "--quantize: unknown quantization 'foo'; choose from none,dynamic,int8"),
        (["--arch=mnasnet-a1", "--quantize=none,int8"], 1,
         "--quantize: give one quantization to time, got none,int8"),
        ([], 1, "give --arch=<preset | block strings | arch.json> or --tflite=PATH"),
        (["--arch=mnasnet-a1", "--tflite=m.tflite"], 1,
         "give either --arch or --tflite, not both"),
        (["--arch=mnasnet-a1", "--latency_backend=benchmark_model"], 1,
         "--latency_backend=benchmark_model needs --benchmark_model=PATH (the "
         "binary; an Android build with --android/--serial)"),
        (["--arch=mnasnet-a1", "--serial=ABC"], 1,
         "--serial needs --latency_backend=benchmark_model (got "
         "--latency_backend=host)"),
        (["--arch=mnasnet-a1", "--num_runs=0"], 1,
         "--num_runs must be an integer in [1, 100000] or None, got 0"),
        (["--arch=mnasnet-a1", "--repeats=0"], 1, "--repeats must be >= 1, got 0"),
        (["--arch=mnasnet-a1", "--cpus=a-b"], 1,
         "--cpus must be a CPU list such as '0' or '0,2-3', got 'a-b'"),
        (["--arch=mnasnet-a1", "--width_multiplier=-1"], 1,
         "--width_multiplier must be in (0, 8], got -1"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(cli, args, status, message):
    assert cli.refusal(*args, status=status) == f"mnas-latency: {message}"


def test_arch_flags_with_tflite_are_refused(cli, tiny_tflite):
    for flag, name in (
        ("--quantize=int8", "quantize"),
        ("--resolution=64", "resolution"),
    ):
        assert cli.refusal(f"--tflite={tiny_tflite}", flag) == (
            f"mnas-latency: --{name} applies to --arch, not to --tflite"
        )


def test_output_dir_that_is_a_file(cli, tiny_tflite, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    assert cli.refusal(f"--tflite={tiny_tflite}", f"--output_dir={target}") == (
        f"mnas-latency: --output_dir is not a folder: {target}"
    )


def test_cpus_outside_the_affinity_is_one_line(cli, tiny_tflite):
    line = cli.refusal(f"--tflite={tiny_tflite}", "--cpus=4000", "--latency_cache=")
    assert line.startswith("mnas-latency: cannot pin to CPUs [4000]")


def test_an_architecture_that_would_compute_nans_is_refused_before_export(
    cli, tmp_path
):
    """A negative batch-norm epsilon used to export and time an all-NaN model
    with exit 0."""
    path = tmp_path / "arch.json"
    path.write_text(
        json.dumps({"blocks": ["r1_k3_s11_e1_i32_o16"], "batch_norm_epsilon": -1e-3})
    )
    assert cli.refusal(f"--arch={path}", "--latency_cache=", timeout=60) == (
        f"mnas-latency: architecture file {str(path)!r}: batch_norm_epsilon must "
        "be a number in (0, 1], got -0.001"
    )


def test_missing_benchmark_model_binary_names_it(cli, tiny_tflite, tmp_path):
    line = cli.refusal(
        f"--tflite={tiny_tflite}",
        "--latency_backend=benchmark_model",
        "--benchmark_model=/nonexistent/benchmark_model",
        f"--latency_cache={tmp_path / 'c.sqlite'}",
    )
    assert line.startswith(
        "mnas-latency: cannot read benchmark_model binary: [Errno 2] No such file "
    )
    assert line.endswith("command: /nonexistent/benchmark_model")


def test_no_phone_is_found_before_anything_is_exported(cli, tmp_path):
    """`adb devices` (a stand-in listing no device) is asked before the
    architecture is built, so the error comes in a second, not after the
    export, and nothing is written."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    adb = fake_bin / "adb"
    adb.write_text('#!/bin/sh\necho "List of devices attached"\necho\n')
    adb.chmod(0o755)
    out = tmp_path / "out"
    result = cli.run(
        "--arch=mnasnet-a1",
        "--latency_backend=benchmark_model",
        "--android",
        "--benchmark_model=/bin/true",
        "--latency_cache=",
        f"--output_dir={out}",
        env={"PATH": f"{fake_bin}:/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "mnas-latency: no Android device is connected: `adb devices` lists none."
    )
    assert result.stderr.count("\n") == 1 and "exported" not in result.stdout
    assert not out.exists()


# -- lookup-table modes ------------------------------------------------------


def _write_table(path, fingerprint=None, calibration=None):
    """MNASNET_SPACE's synthetic entries in a table file, under ``fingerprint``
    (default: the synthetic table's own, which no real backend has)."""
    import dataclasses

    from mnas.latency.lut.table import LookupTable
    from mnas.testing.latency_models import synthetic_table

    source = synthetic_table()
    header = source.header
    if fingerprint is not None:
        header = dataclasses.replace(header, fingerprint=fingerprint)
    table = LookupTable.create(path, header)
    for key in source.keys():  # noqa: SIM118 (a table, not a dict)
        table.add(key, source.get(key))
    if calibration is not None:
        table.set_calibration(calibration)
    return table


def test_predict_prints_the_breakdown_and_the_predictors_latency(tmp_path):
    from mnas.latency.lut.predictor import LatencyPredictor, fit_calibration
    from mnas.latency.lut.table import LookupTable
    from mnas.search_space import get_preset

    path = tmp_path / "host.lut.jsonl"
    calibration = fit_calibration([4.0, 5.0, 6.0], [4.4, 5.4, 6.7])
    _write_table(path, HostBackend().fingerprint(), calibration)
    out = tmp_path / "out"
    result = _run(
        "--predict", "--arch=mnasnet-a1", f"--lut={path}", f"--output_dir={out}"
    )
    assert result.returncode == 0, result.stderr
    spec = get_preset("mnasnet-a1")
    predictor = LatencyPredictor(LookupTable.load(path))
    for key, ms in predictor.breakdown(spec):
        assert f"{key}" in result.stdout
        assert f"{ms:.4f}" in result.stdout
    lines = result.stdout.splitlines()
    assert f"sum of entries: {predictor.raw_ms(spec):.3f} ms" in lines
    assert f"predicted latency of mnasnet-a1: {predictor.predict(spec):.3f} ms" in lines
    assert "calibration: measured ≈ " in result.stdout
    data = json.loads((out / "predictor.json").read_text())
    assert data["arch"] == "mnasnet-a1"
    assert data["predicted_ms"] == pytest.approx(predictor.predict(spec), rel=1e-12)
    config = json.loads((out / "config.json").read_text())
    assert config["mode"] == "predict" and config["lut_path"] == str(path)
    # MnasNet-A1 lies outside the space (112 filters in block 4): its three
    # layers the table lacks were measured on the host and appended.
    grown = LookupTable.load(path)
    assert len(grown) == 2685 + 3
    assert grown.keys()[-3:] == (
        "layer:mbconv_e6_k3_s1_se20_none:14x14x80->112:relu",
        "layer:mbconv_e6_k3_s1_se28_add:14x14x112->112:relu",
        "layer:mbconv_e6_k5_s2_se28_none:14x14x112->160:relu",
    )
    assert all(grown.get(k).median_ms > 0 for k in grown.keys()[-3:])


def test_predict_refuses_a_table_of_another_backend(tmp_path):
    path = tmp_path / "synthetic.lut.jsonl"
    _write_table(path)
    result = _run("--predict", "--arch=mnasnet-a1", f"--lut={path}")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"mnas-latency: {path} was measured on backend [synthetic; none; none; "
        "1 thread(s); runtime 0], not on [host; "
    )
    host = HostBackend().fingerprint()
    assert f"[host; {host.device_model}; {host.device_id}; 1 thread(s);" in (
        result.stderr
    )
    assert "build a table for this backend with `mnas-latency --build_lut`" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_table_files_that_are_no_table(cli, tmp_path):
    """The --lut template is filled in, and a missing table, a directory and
    a file of something else each get one line naming the path."""
    template = str(tmp_path / "{backend}-{space}.jsonl")
    missing = tmp_path / "host-mnasnet.jsonl"
    assert cli.refusal("--predict", "--arch=mnasnet-a1", f"--lut={template}") == (
        f"mnas-latency: no lookup table at {missing}; build one with "
        f"`mnas-latency --build_lut --lut={missing}`"
    )
    assert cli.refusal("--predict", "--arch=mnasnet-a1", f"--lut={tmp_path}") == (
        f"mnas-latency: {tmp_path} is a directory, not a lookup-table file"
    )
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\x00\x01 not a table\n")
    assert cli.refusal("--build_lut", f"--lut={garbage}") == (
        f"mnas-latency: {garbage}: line 1 is corrupt (Expecting value: line 1 "
        "column 1 (char 0)); only a torn last line is cut automatically: repair "
        "or remove this line by hand"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--build_lut", "--predict"], "give one of --build_lut, --predict, not several"),
        (["--predict"], "--predict needs --arch=<preset | strings | json>"),
        (["--predict", "--tflite=m.tflite"],
         "--predict works on architectures, not on --tflite"),
        (["--build_lut", "--rounds=0"], "--rounds must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_lut_mode_usage_errors(cli, args, message):
    assert cli.refusal(*args) == f"mnas-latency: {message}"
