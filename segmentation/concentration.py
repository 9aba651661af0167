"""Cost concentration: Lorenz curve, Gini and the share of cost used by the heaviest users."""
from __future__ import annotations

import numpy as np
import pandas as pd


def lorenz_curve(cost: np.ndarray | pd.Series) -> pd.DataFrame:
    """Cumulative share of clients (lightest users first) against cumulative share of cost.

    Starts at (0, 0) and ends at (1, 1); missing costs are an error, not zeros.
    """
    values = np.asarray(cost, dtype=float)
    if np.isnan(values).any():
        raise ValueError("cost has missing values; fill or drop them explicitly before a Lorenz curve")
    if (values < 0).any():
        raise ValueError("cost has negative values")
    values = np.sort(values)
    total = values.sum()
    cum = np.concatenate([[0.0], np.cumsum(values) / total]) if total > 0 else np.linspace(0, 1, len(values) + 1)
    return pd.DataFrame({"client_share": np.linspace(0, 1, len(values) + 1), "cost_share": cum})


def gini(cost: np.ndarray | pd.Series) -> float:
    """Gini coefficient of cost (0 = everyone costs the same, 1 = one client has all the cost)."""
    curve = lorenz_curve(cost)
    x, y = curve["client_share"].to_numpy(), curve["cost_share"].to_numpy()
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
    return 1.0 - 2.0 * area


def top_shares(cost: np.ndarray | pd.Series, tops: tuple[float, ...] = (0.01, 0.05, 0.10)) -> dict[str, float]:
    """Share of total cost used by the top 1 / 5 / 10 % of clients (rounded to whole clients)."""
    values = np.sort(np.asarray(cost, dtype=float))[::-1]
    total = values.sum()
    return {f"top_{round(t * 100):g}pct": float(values[: max(1, round(t * len(values)))].sum() / total) if total else np.nan
            for t in tops}


def segment_cost_shares(segments: pd.Series, cost: pd.Series) -> pd.DataFrame:
    """Per segment: clients, share of clients, total cost and share of cost (shares sum to 1)."""
    frame = pd.DataFrame({"segment": segments.to_numpy(), "cost": cost.to_numpy(dtype=float)})
    out = frame.groupby("segment", observed=True).agg(clients=("cost", "size"), cost_eur=("cost", "sum"))
    out["client_share"] = out["clients"] / out["clients"].sum()
    out["cost_share"] = out["cost_eur"] / out["cost_eur"].sum() if out["cost_eur"].sum() > 0 else np.nan
    out["cost_per_client_eur"] = out["cost_eur"] / out["clients"]
    return out.sort_values("cost_share", ascending=False)
