"""A user's one query: their taste over time, for the lists a person sees.

The query tower answers for a moment: "what will this user rate next, at time t,
given everything they rated up to t?" (recsys/history.py). A user's list needs one
query, and which moments it should weigh depends on what is asked of it:

  now         the moment after the user's latest rating: the next movie. This is what
              a deployed recommender is asked, and what the temporal split tests.
  long-term   every moment the user rated something (each with only the ratings up to
              it), weighted by how many ratings it holds and by exp(-age / horizon).
              Under a random split a user's held-out movies are spread over their
              whole history, so all of their moments matter, not only the last.

Two ways to combine the moments:

  mean        the weighted mean of the moment queries: still one vector, so exact
              search, Annoy and the rating head serve it unchanged;
  mixture     the weighted mixture of the moments' softmaxes over the catalogue: a movie
              scores by how likely some moment of the user's was to pick it. Sharper,
              but not one vector: exact search computes it, and an index retrieves a
              pool with the mean query that the mixture then rescores.

The movies a user rated can also vote for the movies that go with them: the model's
item-item part (recsys/itemitem.py) adds item_item x its score, in logit units.

For someone new, whose few ratings the query tower reads as one short session, the latest
query can be refitted to the movies they rated: a few gradient steps up their likelihood
under the softmax over the catalogue (fold-in, `recsys.newuser.fold_in`).

A popularity prior can be added back (logQ correction takes it out in training): in
logit units the score gains prior x log(1 + training count); for the mean query that is
one extra coordinate on both sides (temperature x log(1 + count) for the movie, the
prior for the query). The horizon, the way, the prior and the item-item weight are chosen on validation per
run (`recsys.evaluate.choose_taste`), never on test.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from recsys.errors import UserError
from recsys.history import Timeline

NOW = 0.0
HORIZONS = (NOW, 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0, math.inf)  # seconds
PRIORS = (0.0, 0.25, 0.5, 0.75, 1.0)
ITEM_ITEMS = (0.0, 0.5, 1.0, 2.0, 4.0)  # logits per standard deviation of the item-item score
MAX_FOLD_IN = 1000  # refit steps a stored taste may ask for


@dataclass(frozen=True)
class Taste:
    """How a user's query is made from their moments."""

    horizon: float = NOW  # seconds; 0: the latest moment only; inf: every moment alike
    prior: float = 0.0  # weight of log(1 + training count) in logit units
    mixture: bool = False  # moments combined by their softmaxes (else by their mean query)
    item_item: float = 0.0  # weight of the model's item-item score (0 for a run without one)
    fold_in: int = 0  # steps that refit the latest moment's query to the rated movies (new users)

    @property
    def mixes(self) -> bool:
        """Whether lists come from a mixture of softmaxes, not from one query (the latest
        moment alone is one query, whatever `mixture` says)."""
        return self.mixture and self.horizon != NOW

    @property
    def rescores(self) -> bool:
        """Whether a list's scores differ from its one query's (an index's pool is then rescored)."""
        return self.mixes or bool(self.item_item)

    def to_dict(self) -> dict:
        """Plain JSON for a run's info (infinity as a string JSON can hold)."""
        d = asdict(self)
        d["horizon"] = "inf" if math.isinf(self.horizon) else self.horizon
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "Taste":
        """Inverse of `to_dict`; "now" with no prior for a run that has none. A damaged one
        (a field that is not a number, a refit longer than MAX_FOLD_IN) is a UserError."""
        d = d or {}
        try:
            t = cls(horizon=float(d.get("horizon", NOW)), prior=float(d.get("prior", 0.0)),
                    mixture=bool(d.get("mixture", False)), item_item=float(d.get("item_item", 0.0)),
                    fold_in=int(d.get("fold_in", 0)))
        except (TypeError, ValueError) as exc:
            raise UserError(f"a stored taste is damaged ({exc})") from None
        if not 0 <= t.fold_in <= MAX_FOLD_IN:  # each step scores the whole catalogue
            raise UserError(f"a stored taste is damaged (fold_in {t.fold_in} is not 0 to {MAX_FOLD_IN})")
        return t

    def describe(self) -> str:
        """One line for people: which moments weigh, and the prior."""
        if self.fold_in:
            when = f"the latest moment's query refitted to the rated movies ({self.fold_in} steps)"
        elif self.horizon == NOW:
            when = "the user's latest moment"
        elif math.isinf(self.horizon):
            when = "all of the user's moments alike"
        else:
            when = f"the user's moments, halving every {self.horizon * math.log(2) / 86400:.2g} days"
        how = ", mixed by their softmaxes" if self.mixes else ""
        with_item_item = f", plus the movies that go with theirs x {self.item_item:g}" if self.item_item else ""
        return when + how + with_item_item + (f", plus popularity x {self.prior:g}" if self.prior else "")


@dataclass(frozen=True)
class Moments:
    """Distinct (user, time) points of a timeline: the queries a long-term taste averages."""

    user: np.ndarray  # int64 user rows
    time: np.ndarray  # float64 seconds
    count: np.ndarray  # ratings at that second
    queries: dict  # query inputs: user, timestamp and history pointers (nothing after the time)

    @classmethod
    def of(cls, timeline: Timeline, users: np.ndarray | None = None) -> "Moments":
        """The moments of `users` (default: everyone) in `timeline`."""
        n_users = timeline.n_users
        row_user = np.repeat(np.arange(n_users), np.diff(timeline.bounds))
        keep = np.ones(len(row_user), bool) if users is None else np.isin(row_user, users)
        u, t = row_user[keep], timeline.timestamp[keep]
        # Rows are sorted by (user, time): a new moment starts wherever either changes.
        starts = np.flatnonzero(np.r_[True, (u[1:] != u[:-1]) | (t[1:] != t[:-1])]) if len(u) else np.array([], int)
        count = np.diff(np.r_[starts, len(u)])
        mu, mt = u[starts], t[starts]
        queries = {"user": mu.astype(np.int32), "timestamp": mt, **timeline.pointers(mu, mt).as_dict()}
        return cls(mu, mt, count, queries)


def weights(moments: Moments, now: np.ndarray, horizon: float) -> np.ndarray:
    """Each moment's weight: its number of ratings times exp(-age / horizon)."""
    if math.isinf(horizon):
        return moments.count.astype(np.float64)
    age = np.maximum(np.asarray(now, np.float64)[moments.user] - moments.time, 0.0)
    # Relative to the user's newest moment, so long ages never underflow every weight to 0.
    newest = np.full(len(now), np.inf)
    np.minimum.at(newest, moments.user, age)
    return moments.count * np.exp(-(age - newest[moments.user]) / horizon)


def mean_queries(embedded: np.ndarray, moments: Moments, now: np.ndarray, horizon: float,
                 n_users: int) -> np.ndarray:
    """[n_users, d]: each user's moment embeddings averaged with `weights` (0 for no moment)."""
    w = weights(moments, now, horizon)
    total = np.bincount(moments.user, w, n_users)
    out = np.zeros((n_users, embedded.shape[1]), np.float64)
    np.add.at(out, moments.user, embedded * w[:, None])
    return (out / np.maximum(total, 1e-300)[:, None]).astype(np.float32)


def prior_column(counts: np.ndarray, temperature: float) -> np.ndarray:
    """The candidates' extra coordinate: temperature x log(1 + training count)."""
    return (temperature * np.log1p(np.asarray(counts, np.float64))).astype(np.float32)


def user_vectors(candidates: np.ndarray, counts: np.ndarray, temperature: float) -> np.ndarray:
    """What a user's query is matched against: each movie's embedding and its prior coordinate."""
    return np.hstack([candidates, prior_column(counts, temperature)[:, None]]).astype(np.float32)


def scores(query: np.ndarray, candidates: np.ndarray, prior_col: np.ndarray, taste: Taste) -> np.ndarray:
    """[users, movies]: q . c plus the prior."""
    return query @ candidates.T + taste.prior * prior_col[None, :]


MIXTURE_CHUNK = 1 << 22  # moment x movie probabilities held at once


def mixture_scores(embedded: np.ndarray, moments: Moments, now: np.ndarray, horizon: float,
                   candidates: np.ndarray, temperature: float, users: np.ndarray) -> np.ndarray:
    """[len(users), movies]: log of each user's weighted mixture of their moments' softmaxes.

    `moments` must hold every moment of `users` (and may hold others); a user without
    moments gets a uniform row.
    """
    return mixtures(embedded, moments, now, (horizon,), candidates, temperature, users)[horizon]


def mixtures(embedded: np.ndarray, moments: Moments, now: np.ndarray, horizons: tuple[float, ...],
             candidates: np.ndarray, temperature: float, users: np.ndarray) -> dict[float, np.ndarray]:
    """`mixture_scores` for several horizons at once: each moment's softmax is computed once."""
    users = np.asarray(users)
    position = np.full(int(max(moments.user.max(initial=-1), users.max(initial=-1))) + 1, -1)
    position[users] = np.arange(len(users))
    keep = np.flatnonzero(position[moments.user] >= 0) if len(moments.user) else np.array([], int)
    # float32 products: the weighted sums are bandwidth-bound, and a probability needs no more.
    w = {h: weights(moments, now, h)[keep].astype(np.float32) for h in horizons}
    rows = position[moments.user[keep]]
    out = {h: np.zeros((len(users), len(candidates)), np.float64) for h in horizons}
    step = max(MIXTURE_CHUNK // max(len(candidates), 1), 1)
    for start in range(0, len(keep), step):
        part = keep[start: start + step]
        logits = embedded[part] @ candidates.T / temperature
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        # Moments come grouped by user, so each chunk adds a few contiguous blocks: a weighted
        # sum per block, done as one matrix product (many times faster than a segment sum).
        block = rows[start: start + step]
        changes = np.r_[True, block[1:] != block[:-1]]
        segment, cols = np.cumsum(changes) - 1, np.arange(len(part))
        for h in horizons:
            sums = np.zeros((segment[-1] + 1, len(part)), np.float32)
            sums[segment, cols] = w[h][start: start + step]
            out[h][block[changes]] += sums @ probs
    for h in horizons:
        total = np.bincount(rows, w[h], len(users))
        mixed = np.where(total[:, None] > 0, out[h] / np.maximum(total, 1e-300)[:, None], 1.0 / len(candidates))
        out[h] = np.log(np.maximum(mixed, 1e-300))
    return out


def list_scores(taste: "Taste", query: np.ndarray, mixture: np.ndarray | None, candidates: np.ndarray,
                prior_col: np.ndarray, temperature: float, item_item: np.ndarray | None = None) -> np.ndarray:
    """[users, movies] in one unit whatever the taste: logits (dot / temperature) or log-mixture,
    plus prior x log(1 + count), plus the taste's weight x `item_item` (the users' item-item
    scores, needed when that weight is not 0)."""
    base = mixture if taste.mixes else query @ candidates.T / temperature
    return base + additions(taste, prior_col, temperature, item_item)


def grid_key(taste: "Taste", *way: str) -> str:
    """A taste's key in a run's validation grid: its way (horizon, mean or mixture), prior and
    item-item weight, e.g. "inf|mixture|0.25|item-item 1" ("fold N" leads for a refitted query)."""
    return ("|".join([*([f"fold {taste.fold_in}"] if taste.fold_in else []), *way, f"{taste.prior:g}"])
            + (f"|item-item {taste.item_item:g}" if taste.item_item else ""))


def additions(taste: "Taste", prior_col: np.ndarray, temperature: float,
              item_item: np.ndarray | None = None) -> np.ndarray:
    """What a taste adds to a list's logits: prior x log(1 + count), and its weight x `item_item`."""
    out = taste.prior * prior_col[None, :] / temperature
    return out + taste.item_item * item_item if taste.item_item else out
