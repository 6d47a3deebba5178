"""theta.png and the DNAS result table."""

from mnas.dnas.report import plot_theta, result_table
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
