"""Lookup-table flags: the file path template, the mode, the LutJob."""

import os

import pytest
from absl import flags

from mnas.flags.latency import define_latency_flags
from mnas.flags.lut import (
    LATENCY_SOURCES,
    define_latency_source_flag,
    define_lut_flags,
    define_lut_job_flags,
    lut_job_from_flags,
    lut_mode_from_flags,
    lut_path_from_flags,
)
from mnas.flags.search import define_search_flags, search_config_from_flags
from mnas.latency import DEFAULT_LUT_PATH, LatencyConfig, LutJob
from mnas.search_space import get_preset


def test_path_template_takes_backend_and_space(parse):
    default = parse(define_lut_flags)
    assert lut_path_from_flags(default, "mnasnet") == os.path.expanduser(
        DEFAULT_LUT_PATH.format(backend="host", space="mnasnet")
    )
    flag_values = parse(
        define_lut_flags,
        define_latency_flags,
        "--lut=/t/{backend}-{space}.jsonl",
        "--latency_backend=litert-benchmark",
    )
    assert lut_path_from_flags(flag_values, "tiny") == "/t/litert-benchmark-tiny.jsonl"
    assert lut_path_from_flags(flag_values, "tiny", "host") == "/t/host-tiny.jsonl"


@pytest.mark.parametrize(
    "lut, message",
    [
        ("/t/{device}.jsonl", "--lut may only use the fields {backend} and {space}, "
         "got '/t/{device}.jsonl'"),
        ("/t/{.jsonl", "--lut may only use the fields {backend} and {space}, "
         "got '/t/{.jsonl'"),
        ("", "--lut is empty; give the lookup-table file"),
    ],
)  # fmt: skip
def test_bad_paths(parse, lut, message):
    with pytest.raises(ValueError) as info:
        lut_path_from_flags(parse(define_lut_flags, f"--lut={lut}"), "mnasnet")
    assert str(info.value) == message


def test_job_of_each_mode(parse):
    flag_values = parse(
        define_lut_job_flags,
        define_lut_flags,
        "--predict",
        "--lut=/t/{space}.jsonl",
        "--rounds=5",
        "--seed=2",
        "--output_dir=out",
    )
    assert lut_mode_from_flags(flag_values) == "predict"
    spec = get_preset("mnasnet-a1")
    assert lut_job_from_flags(flag_values, "predict", spec) == LutJob(
        mode="predict",
        lut_path="/t/mnasnet.jsonl",
        space_name="mnasnet",
        spec=spec,
        rounds=5,
        seed=2,
        output_dir="out",
    )
    assert lut_mode_from_flags(parse(define_lut_job_flags)) is None


@pytest.mark.parametrize(
    "args, spec, message",
    [
        (["--build_lut", "--predict"], None,
         "give one of --build_lut, --predict, not several"),
        (["--predict"], None, "--predict needs --arch=<preset | strings | json>"),
        (["--evaluate_predictor", "--num_archs=0"], None,
         "--num_archs must be >= 1, got 0"),
        (["--build_lut", "--rounds=1000"], None, "--rounds must be <= 100, got 1000"),
        (["--build_lut", "--calibration_archs=-1"], None,
         "--calibration_archs must be >= 0, got -1"),
    ],
)  # fmt: skip
def test_bad_job_flags(parse, args, spec, message):
    flag_values = parse(define_lut_job_flags, define_lut_flags, *args)
    with pytest.raises(ValueError) as info:
        lut_job_from_flags(flag_values, lut_mode_from_flags(flag_values), spec)
    assert str(info.value) == message


@pytest.mark.parametrize("mode", LATENCY_SOURCES)
def test_latency_source_is_the_search_mode_and_only_measured_drops_the_table(
    parse, mode
):
    """(--lut_calibrated reaches DnasConfig: tests/flags/test_dnas.py.)"""
    flag_values = parse(define_search_flags, f"--latency={mode}")
    config = search_config_from_flags(flag_values, LatencyConfig(), "/t.jsonl")
    assert config.latency_mode == mode
    assert config.lut_path == (None if mode == "measured" else "/t.jsonl")


def test_an_unknown_latency_source_is_refused_while_parsing(parse):
    with pytest.raises(flags.IllegalFlagValueError) as info:
        parse(define_latency_source_flag, "--latency=guessed")
    assert str(info.value) == (
        "flag --latency=guessed: value should be one of <measured|predicted|verified>"
    )
