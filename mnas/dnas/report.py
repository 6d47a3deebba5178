"""Plots and tables of a differentiable search (``mnas-dnas``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mnas.io.atomic import save_figure_atomic
from mnas.io.tables import format_table


def plot_theta(path: str, records: Sequence[Mapping[str, Any]], decisions) -> None:
    """``theta.png``: per decision, the probability (softmax θ) of each choice
    over epochs, one panel per decision kind; and the mean θ entropy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        return
    epochs = [r["epoch"] for r in records]
    kinds: dict[str, list] = {}
    for decision in decisions:
        kinds.setdefault(decision.kind, []).append(decision)
    panels = len(kinds) + 1
    cols = 3
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, (kind, group) in zip(flat, kinds.items()):
        for decision in group:
            final = records[-1]["probs"].get(decision.name)
            if final is None:
                continue
            best = max(range(len(final)), key=lambda i: final[i])
            series = [r["probs"][decision.name][best] for r in records]
            ax.plot(epochs, series, linewidth=0.9)
        ax.axhline(1.0 / group[0].num_choices, color="grey", linestyle=":")
        ax.set_title(f"{kind}: P(final argmax), {len(group)} decisions", fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xlabel("epoch")
    ax = flat[len(kinds)]
    ax.plot(epochs, [r["theta_entropy"] for r in records], marker="o", color="black")
    ax.set_title("mean entropy of softmax(theta) [nats]", fontsize=9)
    ax.set_xlabel("epoch")
    for extra in flat[panels:]:
        extra.axis("off")
    fig.tight_layout()
    save_figure_atomic(path, fig, dpi=80)
    plt.close(fig)


def result_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Pressure, predicted and measured ms, accuracy, blocks."""
    extra = any("in_run_ms" in r for r in rows)
    return format_table(
        (
            "loss",
            "pressure",
            "predicted ms",
            "measured ms",
            *(("spread", "in-run ms") if extra else ()),
            "pred/meas",
            "accuracy",
            "supernet acc",
            "blocks",
        ),
        [
            (
                r["loss"],
                r["pressure"],
                _fmt(r.get("predicted_ms")),
                _fmt(r.get("latency_ms")),
                *((r.get("spread", "-"), _fmt(r.get("in_run_ms"))) if extra else ()),
                _fmt(_ratio(r.get("predicted_ms"), r.get("latency_ms")), 3),
                _fmt(r.get("accuracy"), 3),
                _fmt(r.get("supernet_accuracy"), 3),
                " ".join(r["block_strings"]),
            )
            for r in rows
        ],
    )


def _ratio(a, b):
    if a is None or not b:
        return None
    return a / b


def _fmt(value, digits: int = 2):
    return "-" if value is None else round(float(value), digits)


#: P(argmax) at or above which a decision counts as made.
DECIDED = 0.8


def argmax_probabilities(probs: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Decision -> the probability softmax(θ) gives its argmax choice."""
    return {name: round(float(max(p)), 5) for name, p in probs.items()}


def concentration(probs: Mapping[str, Sequence[float]]) -> str:
    """One line: how many decisions are made (P(argmax) >= ``DECIDED``), the
    smallest and the median P(argmax)."""
    values = sorted(argmax_probabilities(probs).values())
    if not values:
        return "no decisions"
    made = sum(v >= DECIDED for v in values)
    middle = len(values) // 2
    median = (
        values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    )
    return (
        f"{made}/{len(values)} decisions at P(argmax) >= {DECIDED}; "
        f"min {values[0]:.3f}, median {median:.3f}"
    )


def decision_table(decisions, probs: Mapping[str, Sequence[float]]) -> str:
    """Per decision: the argmax choice, its probability, the runner-up."""
    rows = []
    for decision in decisions:
        p = probs.get(decision.name)
        if p is None:
            continue
        order = sorted(range(len(p)), key=lambda i: -p[i])
        best, second = order[0], order[1] if len(order) > 1 else None
        rows.append(
            (
                decision.name,
                decision.choices[best],
                _fmt(p[best], 3),
                "-" if second is None else decision.choices[second],
                "-" if second is None else _fmt(p[second], 3),
                "yes" if p[best] >= DECIDED else "no",
            )
        )
    return format_table(
        ("decision", "argmax", "P", "runner-up", "P2", f">= {DECIDED}"), rows
    )
