"""Latency backend flags -> LatencyConfig, and what mnas-latency times."""

import pytest

from mnas.flags.latency import (
    define_deployment_resolution_flag,
    define_latency_flags,
    define_measure_flags,
    deployment_resolution_from_flags,
    latency_config_from_flags,
)
from mnas.latency import DEFAULT_CACHE_PATH, LatencyConfig


def test_defaults_expand_the_cache_path(parse):
    config = latency_config_from_flags(parse(define_latency_flags))
    assert config == LatencyConfig(cache_path=config.cache_path)
    assert config.cache_path.endswith(DEFAULT_CACHE_PATH.removeprefix("~"))
    assert not config.cache_path.startswith("~")


def test_phone_pool_flags(parse):
    config = latency_config_from_flags(
        parse(
            define_latency_flags,
            "--latency_backend=benchmark_model",
            "--benchmark_model=/opt/bm",
            "--serial=A, B",
            "--taskset_mask=0xF0",
            "--num_runs=7",
            "--num_threads=2",
            "--latency_cache=",
            "--no_latency_cache",
        )
    )
    assert config == LatencyConfig(
        backend="benchmark_model",
        benchmark_model="/opt/bm",
        serials=("A", "B"),
        taskset_mask="0xF0",
        num_runs=7,
        num_threads=2,
        cache_path=None,
        bypass_cache=True,
    )
    host = latency_config_from_flags(parse(define_latency_flags, "--cpus=0,2-3"))
    assert host.cpus == (0, 2, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cpus=x"], "--cpus must be a CPU list such as '0' or '0,2-3', got 'x'"),
        (
            ["--latency_backend=benchmark_model", "--benchmark_model=b", "--android",
             "--taskset_mask=zz"],
            "--taskset_mask must be hex (e.g. f0), got 'zz'",
        ),
        (["--num_threads=0"], "--num_threads must be an integer in [1, 256], got 0"),
        (["--num_runs=1000000000"],
         "--num_runs must be an integer in [1, 100000] or None, got 1000000000"),
        (["--android"], "--android needs --latency_backend=benchmark_model (got "
         "--latency_backend=host)"),
    ],
)  # fmt: skip
def test_bad_latency_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        latency_config_from_flags(parse(define_latency_flags, *args))
    assert str(info.value) == message


def test_deployment_resolution_bounds(parse):
    assert (
        deployment_resolution_from_flags(parse(define_deployment_resolution_flag))
        == 224
    )
    for value, message in (
        (16, "--deployment_resolution must be >= 32, got 16"),
        (4096, "--deployment_resolution must be <= 2048, got 4096"),
    ):
        flag_values = parse(
            define_deployment_resolution_flag, f"--deployment_resolution={value}"
        )
        with pytest.raises(ValueError) as info:
            deployment_resolution_from_flags(flag_values)
        assert str(info.value) == message


def test_measure_flags(parse):
    flag_values = parse(define_measure_flags, "--tflite=m.tflite", "--repeats=3")
    assert (flag_values.tflite, flag_values.repeats) == ("m.tflite", 3)
