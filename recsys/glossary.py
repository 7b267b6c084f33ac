"""What each metric is called, which way is better, and one line on what it means.

The pages' labels and help texts, the charts' axes and the bench tables all read
these, so a metric is described in one place.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A metric's label, direction and meaning."""

    label: str
    higher_is_better: bool
    meaning: str
    percent: bool = True  # shown as a percentage (a share), not a plain number


METRICS: dict[str, Metric] = {
    "rmse": Metric("RMSE", False, "Root mean squared error of the predicted stars on test ratings.", percent=False),
    **{f"top_{k}_accuracy": Metric(f"Top-{k} accuracy", True,
                                   f"Share of test ratings whose movie is among the model's {k} best of all "
                                   "movies, asked at the rating's own time (TFRS's FactorizedTopK).")
       for k in (1, 5, 10, 50, 100)},
    **{f"top_{k}_accuracy_unseen": Metric(f"Top-{k} accuracy, unseen", True,
                                          f"As top-{k} accuracy, ranking only movies the user had not rated "
                                          "before: what a deployed list could show.") for k in (10, 100)},
    **{f"recall_at_{k}": Metric(f"Recall@{k}", True,
                                f"Per user: share of their test movies in their top {k} of movies they had not "
                                "rated (one list per user), averaged over users.") for k in (10, 100)},
    **{f"liked_recall_at_{k}": Metric(f"Liked recall@{k}", True,
                                      f"As recall@{k}, counting only the test movies the user rated 4 or 5 stars.")
       for k in (10, 100)},
    "hr_at_10": Metric("HR@10", True, "Share of users whose next movie (their first test rating by time) is in "
                                      "their top 10."),
    "ndcg_at_10": Metric("NDCG@10", True, "As HR@10, but a hit counts less the lower it sits in the list "
                                          "(1 at the top, 1/log2(rank + 1) below)."),
    "coverage_at_10": Metric("Coverage@10", True, "Share of the catalogue that appears in anyone's top 10."),
    "novelty_at_10": Metric("Novelty@10", True, "Mean self-information of a recommended movie: -log2 of its share "
                                                "of training ratings (higher: less obvious picks).", percent=False),
    "mean_popularity_at_10": Metric("Mean popularity@10", False, "Mean number of training ratings of a "
                                                                 "recommended movie (lower: less popularity bias).",
                                    percent=False),
    "low_rated_share_at_10": Metric("Top 10 predicted below 3★", False, "Share of the shown top 10 that the "
                                                                        "model itself predicts below 3 stars."),
}
ORDERED = {  # the two-stage order's version of a metric (recsys/ranking.py)
    k + "_ranked": Metric(m.label + " (ranked)", m.higher_is_better, m.meaning + " Lists in the two-stage order.",
                          m.percent)
    for k, m in METRICS.items() if k.startswith(("recall", "liked", "hr", "ndcg", "low"))
}
METRICS.update(ORDERED)
ACTIVITY_GROUPS = ("light", "medium", "heavy")
for group in ACTIVITY_GROUPS:
    METRICS[f"recall_at_10_{group}"] = Metric(f"Recall@10, {group} users", True,
                                              f"Recall@10 of the {group} third of users by number of training "
                                              "ratings.")


def label(key: str) -> str:
    """The metric's human name (the key itself if unknown)."""
    return METRICS[key].label if key in METRICS else key


def flat(metrics: dict) -> dict[str, float]:
    """A run's metrics with the per-activity recall spread into one key per group."""
    out = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    for group, value in (metrics.get("recall_at_10_by_activity") or {}).items():
        out[f"recall_at_10_{group}"] = value
    return out


def fmt(key: str, value: float | None) -> str:
    """The value as people read it: a percentage for shares, three decimals otherwise."""
    if value is None or value != value:
        return "–"
    metric = METRICS.get(key)
    return f"{value:.1%}" if metric is None or metric.percent else f"{value:.3f}" if value < 100 else f"{value:.0f}"
