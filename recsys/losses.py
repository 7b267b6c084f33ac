"""What the loss-weight sliders weigh: each task's loss at the chosen settings.

The two losses live on different scales: the rating loss is a mean squared error in
stars² (about 1), the retrieval loss a softmax cross-entropy over the batch's movies,
averaged (about log of the batch's distinct movies, 5 to 6) or, in the seed preset,
summed over the batch (thousands). So "retrieval weight 0.3" means little until one
sees what it multiplies. The sizes here are the training losses of the best epoch of
the latest stored run with the same resolved preset.
"""
from __future__ import annotations

from dataclasses import dataclass

from recsys import runs
from recsys.presets import Preset


@dataclass(frozen=True)
class LossSizes:
    """Each weighted loss at the chosen weights, measured on a stored run."""

    rating: float | None  # rating weight x the run's rating loss (None: that run had no rating task)
    retrieval: float | None
    run_id: str  # where the losses were measured

    def share(self) -> float | None:
        """The rating loss's share of the total, 0..1 (None when a task is missing)."""
        if self.rating is None or self.retrieval is None or self.rating + self.retrieval <= 0:
            return None
        return self.rating / (self.rating + self.retrieval)


def measured(preset: Preset) -> tuple[dict, str] | None:
    """The best epoch's training losses of the latest stored run trained with `preset`."""
    for run in reversed(runs.list_runs()):
        if run.preset != preset or not run.history:
            continue
        best = run.info.get("best_epoch") or len(run.history)
        row = next((h for h in run.history if h.get("epoch") == best), run.history[-1])
        losses = {k: row[k] for k in ("rating_loss", "retrieval_loss") if isinstance(row.get(k), (int, float))}
        if len(losses) == 2:
            return losses, run.run_id
    return None


def sizes(rating_weight: float, retrieval_weight: float, preset: Preset) -> LossSizes | None:
    """Each loss times its weight, from the latest run with both tasks on this preset; None if none."""
    found = measured(preset)
    if found is None:
        return None
    losses, run_id = found
    return LossSizes(rating_weight * losses["rating_loss"], retrieval_weight * losses["retrieval_loss"], run_id)
