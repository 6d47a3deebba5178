"""theta.png and the DNAS result table."""

from mnas.dnas.report import (
    argmax_probabilities,
    concentration,
    decision_table,
    plot_theta,
    result_table,
)
from mnas.search_space.decision import Decision


def test_result_table_shows_the_ratio_and_dashes_for_unknowns():
    rows = [
        {
            "loss": "fbnet",
            "pressure": 0.6,
            "predicted_ms": 5.0,
            "latency_ms": 4.0,
            "accuracy": 0.8123,
            "supernet_accuracy": None,
            "block_strings": ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24"],
        }
    ]
    lines = result_table(rows).splitlines()
    assert lines[0].split()[:4] == ["loss", "pressure", "predicted", "ms"]
    cells = lines[2].split()
    assert cells[:7] == ["fbnet", "0.600", "5.000", "4.000", "1.250", "0.812", "-"]
    assert lines[2].endswith("r1_k3_s11_e1_i32_o16 r2_k3_s22_e6_i16_o24")


def test_theta_plot_is_a_png_and_nothing_without_records(tmp_path):
    decisions = [Decision("block0/kernel", "kernel", ("3", "5"))]
    records = [
        {"epoch": e, "theta_entropy": 0.6 / e, "probs": {"block0/kernel": [0.5, 0.5]}}
        for e in (1, 2)
    ]
    plot_theta(str(tmp_path / "none.png"), [], decisions)
    assert not (tmp_path / "none.png").exists()
    plot_theta(str(tmp_path / "theta.png"), records, decisions)
    assert (tmp_path / "theta.png").read_bytes()[:4] == b"\x89PNG"


PROBS = {
    "block0/kernel": [0.15, 0.85],
    "block0/skip": [0.5, 0.3, 0.2],
    "block1/kernel": [0.8, 0.2],
}


def test_argmax_probabilities_and_the_concentration_line():
    assert argmax_probabilities(PROBS) == {
        "block0/kernel": 0.85,
        "block0/skip": 0.5,
        "block1/kernel": 0.8,
    }
    # 0.8 counts as decided; the median of (0.5, 0.8, 0.85) is 0.8
    assert concentration(PROBS) == (
        "2/3 decisions at P(argmax) >= 0.8; min 0.500, median 0.800"
    )
    assert concentration({}) == "no decisions"


def test_decision_table_names_the_argmax_and_the_runner_up():
    decisions = [
        Decision("block0/kernel", "kernel", ("3", "5")),
        Decision("block0/skip", "skip", ("none", "identity", "pool")),
    ]
    lines = decision_table(decisions, PROBS).splitlines()
    assert lines[2].split() == ["block0/kernel", "5", "0.850", "3", "0.150", "yes"]
    assert lines[3].split() == [
        "block0/skip",
        "none",
        "0.500",
        "identity",
        "0.300",
        "no",
    ]
    assert len(lines) == 4  # block1/kernel is not among the decisions given
