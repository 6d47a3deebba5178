"""The accuracy/latency Pareto front of a search, and its plot."""

from __future__ import annotations

from collections.abc import Sequence

from mnas.io.atomic import save_figure_atomic


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated by another (lower latency, higher accuracy).

    ``points`` are ``(latency, accuracy)``; the front is returned by latency.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_accuracy = [], float("-inf")
    for index in order:
        if points[index][1] > best_accuracy:
            front.append(index)
            best_accuracy = points[index][1]
    return front


def plot_pareto(
    path: str,
    points: Sequence[tuple[float, float]],
    target_ms: float | None,
    title: str = "mnas search",
    verified: Sequence[tuple[float, float]] = (),
) -> None:
    """Writes a PNG: every trial, the front highlighted, the target marked;
    ``verified`` points (a shared search's architectures trained standalone,
    at their measured latency) drawn apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    if points:
        latencies, accuracies = zip(*points)
        axes.scatter(latencies, accuracies, s=18, c="#9aa5b1", label="trials")
        front = pareto_front(points)
        axes.plot(
            [points[i][0] for i in front],
            [points[i][1] for i in front],
            "o-",
            c="#d1495b",
            ms=6,
            label="Pareto front",
        )
    if verified:
        latencies, accuracies = zip(*verified)
        axes.scatter(
            latencies, accuracies, s=70, marker="*", c="#00798c", label="verified"
        )
    if target_ms is not None:
        axes.axvline(target_ms, ls="--", c="#2e4057", label=f"target {target_ms:g} ms")
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("held-out accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    save_figure_atomic(path, figure)
    plt.close(figure)
