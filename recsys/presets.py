"""Named model and training settings. `seed` reproduces the notebook."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from recsys.errors import UserError


@dataclass(frozen=True)
class Preset:
    """Architecture, optimiser and loss settings that a run starts from."""

    embedding_dim: int = 32
    tower_layers: tuple[int, ...] = (64, 32, 32, 32, 32)
    tower_dropout: float = 0.2
    rating_layers: tuple[int, ...] = (256, 128, 64, 64, 32, 32, 1)
    rating_dropout: float = 0.2
    rating_bias: bool = False  # learned global, user and movie biases in the rating head
    rating_factors: int = 0  # size of the rating head's own user and movie factors (0 = none)
    rating_factor_l2: float = 0.0
    retrieval_reduction: str = "sum"  # TFRS's default: summed over the batch
    logq_correction: bool = False
    remove_accidental_hits: bool = False
    temperature: float = 1.0
    l2: float = 0.0  # on dense kernels
    embedding_l2: float = 0.0  # on id embeddings (user, movie), which overfit first
    context_size: int = 0  # the session: the user's latest training ratings at the query time (recsys/history.py)
    context_rating: bool = False  # the rating head sees the session's mean rating too
    item_item_l2: float = 0.0  # the item-item part (recsys/itemitem.py): EASE's regularisation, 0 = off
    history_dim: int = 0  # the whole history before the query: mean of these-sized movie embeddings (0 = off)
    id_dropout: float = 0.0  # in training, hide the user id this often (the unknown-user slot)
    session_dropout: float = 0.0  # in training, hide the session this often (long-term taste alone)
    # Share of training ratings asked at the user's latest training time instead of their
    # own, the rating itself left out of the history: "which movie is missing?", the
    # question a user-level list answers, besides "what comes next?".
    completion_share: float = 0.0
    time_features: bool = True  # the query's timestamp (bucket and value), as in the notebook
    optimizer: str = "ranger"
    learning_rate: float = 0.1
    learning_rate_decay: float = 1.0  # multiplier per epoch (Adam and Adagrad)
    batch_size: int = 8192
    epochs: int = 200
    patience: int = 0  # 0 = no early stopping; the best validation epoch is still kept

    def to_dict(self) -> dict:
        """Plain-JSON form for config.json and the run id."""
        return asdict(self)

    @property
    def reads_history(self) -> bool:
        """Whether a query needs its whole history as a row over the catalogue (the tower's bag)."""
        return bool(self.history_dim)

PRESETS: dict[str, Preset] = {
    # The notebook: deep towers, deep rating head, Ranger (RAdam + Lookahead), batch 8192.
    "seed": Preset(),
    # Tuned on the validation split for this dataset and a 2-core machine (see bench/).
    "default": Preset(
        embedding_dim=32,
        tower_layers=(128, 64),
        tower_dropout=0.2,
        rating_layers=(128, 64, 1),
        rating_dropout=0.0,
        rating_bias=True,
        rating_factors=16,
        rating_factor_l2=1e-4,
        context_size=10,
        context_rating=True,
        session_dropout=0.25,
        id_dropout=0.1,
        item_item_l2=300.0,
        retrieval_reduction="mean",
        logq_correction=True,
        remove_accidental_hits=True,
        temperature=0.5,
        optimizer="adam",
        learning_rate=0.005,
        learning_rate_decay=0.85,
        batch_size=1024,
        epochs=40,
        patience=3,
    ),
}


def get(name: str) -> Preset:
    """Look a preset up by name, with a clear error for an unknown one."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def with_overrides(preset: Preset, **overrides) -> Preset:
    """A copy of `preset` with the non-None overrides applied."""
    return replace(preset, **{k: v for k, v in overrides.items() if v is not None})
