import os

from mnas.search.pareto import pareto_front, plot_pareto


def test_front_keeps_only_non_dominated_points():
    points = [(10.0, 0.5), (5.0, 0.4), (7.0, 0.6), (12.0, 0.55), (3.0, 0.2), (7.0, 0.3)]
    assert pareto_front(points) == [4, 1, 2]


def test_front_of_nothing():
    assert pareto_front([]) == []


def test_plot_writes_png(tmp_path):
    path = str(tmp_path / "pareto.png")
    plot_pareto(path, [(10.0, 0.5), (5.0, 0.4)], target_ms=8.0)
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["pareto.png"]
