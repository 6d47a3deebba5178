"""mnas-latency and its shared flags (``mnas.flags.latency``).

The binary runs as a subprocess, as a user runs it; the config layer is
tested in-process.  Measuring a given ``.tflite`` needs no TensorFlow in
the child, so those runs take a couple of seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from mnas.flags.latency import latency_config_from_flags
from mnas.latency.backends.benchmark_model import (
    AdbBenchmarkModelBackend,
    LocalBenchmarkModelBackend,
)
from mnas.latency.backends.host import HostBackend
from mnas.latency.backends.litert_benchmark import LiteRTBenchmarkBackend
from mnas.latency.cache import CachedBackend
from mnas.latency.config import (
    DEFAULT_CACHE_PATH,
    LatencyConfig,
    backend_from_config,
    backends_from_config,
    pool_from_config,
)


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


# -- LatencyConfig -----------------------------------------------------------


def _flag_values(**overrides):
    values = {
        "latency_backend": "host",
        "num_threads": 1,
        "num_runs": None,
        "serial": [],
        "benchmark_model": None,
        "android": False,
        "taskset_mask": None,
        "cpus": None,
        "latency_cache": DEFAULT_CACHE_PATH,
        "no_latency_cache": False,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def test_config_from_flags_expands_cache_and_parses_cpus():
    config = latency_config_from_flags(_flag_values(cpus="0,2-3", num_runs=7))
    assert config.cpus == (0, 2, 3)
    assert config.num_runs == 7
    assert config.cache_path.endswith(".cache/mnas/latency.sqlite")
    assert not config.cache_path.startswith("~")
    assert latency_config_from_flags(_flag_values(latency_cache="")).cache_path is None


def test_config_round_trips_through_json():
    config = LatencyConfig(
        backend="benchmark_model",
        benchmark_model="/opt/bm",
        serials=("A", "B"),
        taskset_mask="f0",
        num_runs=20,
        cache_path="/tmp/c.sqlite",
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert LatencyConfig.from_dict(data) == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "gpu"}, "unknown latency backend 'gpu'; choose one of host"),
        ({"num_threads": 0}, "--num_threads must be >= 1, got 0"),
        ({"num_runs": 0}, "--num_runs must be >= 1, got 0"),
        (
            {"backend": "benchmark_model"},
            "--latency_backend=benchmark_model needs --benchmark_model=PATH",
        ),
        (
            {"serials": ("A",)},
            "--serial needs --latency_backend=benchmark_model (got "
            "--latency_backend=host)",
        ),
        ({"android": True}, "--android needs --latency_backend=benchmark_model"),
        (
            {
                "backend": "benchmark_model",
                "benchmark_model": "bm",
                "taskset_mask": "f",
            },
            "--taskset_mask applies on a phone (--android or --serial)",
        ),
        (
            {
                "serials": ("A", "A"),
                "backend": "benchmark_model",
                "benchmark_model": "b",
            },
            "--serial lists a device twice: A,A",
        ),
    ],
)
def test_config_rejects_bad_combinations(kwargs, message):
    with pytest.raises(ValueError) as info:
        LatencyConfig(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"cpus": "x"}, "--cpus must be a CPU list such as '0' or '0,2-3', got 'x'"),
        ({"taskset_mask": "zz"}, "--taskset_mask must be hex (e.g. f0), got 'zz'"),
    ],
)
def test_config_from_flags_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError) as info:
        latency_config_from_flags(_flag_values(**overrides))
    assert str(info.value) == message


def test_backends_are_cached_unless_the_cache_is_off(tmp_path):
    cached = backend_from_config(
        LatencyConfig(num_runs=5, cpus=(0,), cache_path=str(tmp_path / "c.sqlite"))
    )
    assert isinstance(cached, CachedBackend) and not cached.bypass
    assert isinstance(cached.backend, HostBackend)
    assert cached.backend.options.num_runs == 5
    assert cached.backend.options.cpus == (0,)
    bypass = backend_from_config(
        LatencyConfig(cache_path=str(tmp_path / "c.sqlite"), bypass_cache=True)
    )
    assert bypass.bypass
    plain = backend_from_config(LatencyConfig(backend="litert-benchmark"))
    assert isinstance(plain, LiteRTBenchmarkBackend)


def test_benchmark_model_local_and_adb_pool():
    local = backend_from_config(
        LatencyConfig(backend="benchmark_model", benchmark_model="/opt/bm", cpus=(1,))
    )
    assert isinstance(local, LocalBenchmarkModelBackend)
    assert local.cpus == (1,)
    config = LatencyConfig(
        backend="benchmark_model",
        benchmark_model="/opt/bm",
        serials=("S1", "S2"),
        taskset_mask="f0",
        num_runs=12,
    )
    backends = backends_from_config(config)
    assert [type(b) for b in backends] == [AdbBenchmarkModelBackend] * 2
    assert [b.adb.requested_serial for b in backends] == ["S1", "S2"]
    assert all(b.taskset_mask == "f0" and b.options.num_runs == 12 for b in backends)
    assert len(pool_from_config(config)) == 2
    with pytest.raises(ValueError, match="--serial lists 2 devices"):
        backend_from_config(config)
    phone = backend_from_config(
        LatencyConfig(backend="benchmark_model", benchmark_model="bm", android=True)
    )
    assert isinstance(phone, AdbBenchmarkModelBackend)


# -- the binary --------------------------------------------------------------


def test_measures_a_tflite_file_then_hits_the_cache(tiny_tflite, tmp_path):
    cache = str(tmp_path / "latency.sqlite")
    args = (f"--tflite={tiny_tflite}", "--num_runs=3", f"--latency_cache={cache}")
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
    second = _run(*args)
    assert second.returncode == 0, second.stderr
    assert " hit" in second.stdout
    bypassed = _run(*args, "--no_latency_cache")
    assert bypassed.returncode == 0, bypassed.stderr
    assert "bypassed" in bypassed.stdout


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
    "args, message",
    [
        (
            ["--latency_backend=gpu", "--tflite=x.tflite"],
            "flag --latency_backend=gpu: value should be one of "
            "<host|litert-benchmark|benchmark_model>",
        ),
        (["--tflite=/nonexistent/m.tflite"], "--tflite file not found: /nonexistent/"),
        (["--arch=nope"], "unknown preset 'nope'; known presets:"),
        (
            ["--arch=mnasnet-a1", "--quantize=foo"],
            "flag --quantize=foo: value should be one of <none|dynamic|int8>",
        ),
        ([], "give --arch=<preset | block strings | arch.json> or --tflite=PATH"),
        (["--arch=mnasnet-a1", "--tflite=m.tflite"], "give either --arch or --tflite"),
        (
            ["--arch=mnasnet-a1", "--latency_backend=benchmark_model"],
            "--latency_backend=benchmark_model needs --benchmark_model=PATH",
        ),
        (["--arch=mnasnet-a1", "--serial=ABC"], "--serial needs --latency_backend"),
        (["--arch=mnasnet-a1", "--num_runs=0"], "--num_runs must be >= 1, got 0"),
        (["--arch=mnasnet-a1", "--repeats=0"], "--repeats must be >= 1, got 0"),
        (["--arch=mnasnet-a1", "--cpus=a-b"], "--cpus must be a CPU list"),
    ],
)
def test_bad_input_is_a_clear_usage_error(args, message):
    result = _run(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_quantize_or_resolution_with_tflite_is_rejected(tiny_tflite):
    for flag, message in (
        ("--quantize=int8", "--quantize applies to --arch"),
        ("--resolution=64", "--resolution applies to --arch, not to --tflite"),
    ):
        result = _run(f"--tflite={tiny_tflite}", flag)
        assert result.returncode != 0
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_output_dir_that_is_a_file(tiny_tflite, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = _run(f"--tflite={tiny_tflite}", f"--output_dir={target}")
    assert result.returncode != 0
    assert f"--output_dir is not a folder: {target}" in result.stderr
    assert "Traceback" not in result.stderr


def test_cpus_outside_the_affinity_is_a_usage_error(tiny_tflite):
    result = _run(f"--tflite={tiny_tflite}", "--cpus=4096", "--latency_cache=")
    assert result.returncode != 0
    assert "cannot pin to CPUs [4096]" in result.stderr
    assert "Traceback" not in result.stderr


def test_measurement_failures_exit_nonzero_with_the_command(tiny_tflite, tmp_path):
    missing = _run(
        f"--tflite={tiny_tflite}",
        "--latency_backend=benchmark_model",
        "--benchmark_model=/nonexistent/benchmark_model",
        f"--latency_cache={tmp_path / 'c.sqlite'}",
    )
    assert missing.returncode == 1
    assert "mnas-latency: measurement failed: cannot read benchmark_model binary" in (
        missing.stderr
    )
    assert "command: /nonexistent/benchmark_model" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_adb_without_a_phone_fails_fast(tiny_tflite, tmp_path):
    import shutil

    if shutil.which("adb") is None:
        pytest.skip("adb is not installed")
    devices = subprocess.run(
        ["adb", "devices"], capture_output=True, text=True, timeout=60
    )
    if any(line.strip().endswith("device") for line in devices.stdout.splitlines()[1:]):
        pytest.skip("a phone is connected")
    result = _run(
        f"--tflite={tiny_tflite}",
        "--latency_backend=benchmark_model",
        "--android",
        "--benchmark_model=/bin/true",
        f"--latency_cache={tmp_path / 'c.sqlite'}",
        timeout=120,
    )
    assert result.returncode == 1
    assert "no Android device is connected" in result.stderr
    assert "adb devices" in result.stderr
    assert "Traceback" not in result.stderr


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


def test_predict_without_a_table_says_how_to_build_it(tmp_path):
    path = tmp_path / "none.lut.jsonl"
    result = _run("--predict", "--arch=mnasnet-a1", f"--lut={path}")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"mnas-latency: no lookup table at {path}; build one with "
        f"`mnas-latency --build_lut --lut={path}`"
    )


def test_lut_path_template_names_backend_and_space(tmp_path):
    template = str(tmp_path / "{backend}-{space}.jsonl")
    result = _run("--predict", "--arch=mnasnet-a1", f"--lut={template}")
    assert result.returncode == 1
    assert f"no lookup table at {tmp_path / 'host-mnasnet.jsonl'};" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--build_lut", "--predict"],
            "give one of --build_lut, --predict, not several",
        ),
        (
            ["--predict", "--evaluate_predictor", "--arch=mnasnet-a1"],
            "give one of --predict, --evaluate_predictor, not several",
        ),
        (["--predict"], "--predict needs --arch=<preset | strings | json>"),
        (
            ["--predict", "--tflite=m.tflite"],
            "--predict works on architectures, not on --tflite",
        ),
        (["--evaluate_predictor", "--num_archs=0"], "--num_archs must be >= 1, got 0"),
        (["--build_lut", "--rounds=0"], "--rounds must be >= 1, got 0"),
        (["--build_lut", "--calibration_archs=-1"], "--calibration_archs must be >= 0"),
        (["--predict", "--arch=nope"], "unknown preset 'nope'; known presets:"),
    ],
)
def test_lut_mode_usage_errors(args, message):
    result = _run(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
