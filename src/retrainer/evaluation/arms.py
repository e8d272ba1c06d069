"""Significance of the difference between two arms' live metrics, from aggregates only.

Accuracy: a two-proportion z-test. MAE: Welch's t-test on absolute errors, whose variance
follows from RMSE and MAE (var|e| = RMSE² − MAE²). Other metrics have no test from the
aggregates; their verdict is "inconclusive" with the values still reported.

>>> r = compare_arms("accuracy", 0.80, 5000, 0.83, 5000, significance=0.05)
>>> r.verdict, r.p_value < 0.05
('challenger_better', True)
>>> compare_arms("accuracy", 0.80, 50, 0.81, 50, significance=0.05).verdict
'inconclusive'

``margin`` tests against a shifted null: "challenger_better" then means the challenger is
better by more than ``margin`` (in the metric's units; negative: "not worse by more than"):

>>> compare_arms("accuracy", 0.80, 5000, 0.83, 5000, significance=0.05, margin=0.02).verdict
'inconclusive'
>>> compare_arms("mae", 2.1, 500, 1.4, 500, significance=0.05,
...              champion_rmse=2.6, challenger_rmse=1.8).verdict
'challenger_better'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..core.metrics import METRICS


@dataclass(frozen=True)
class ArmComparison:
    metric: str
    champion: float
    challenger: float
    n_champion: int
    n_challenger: int
    improvement: float
    test: str
    p_value: float | None
    verdict: str  # challenger_better | challenger_worse | inconclusive

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_arms(
    metric: str,
    champion: float,
    n_champion: int,
    challenger: float,
    n_challenger: int,
    *,
    significance: float,
    champion_rmse: float | None = None,
    challenger_rmse: float | None = None,
    margin: float = 0.0,
) -> ArmComparison:
    from scipy import stats  # on use: importing the module (a server) stays cheap

    m = METRICS[metric]
    improvement = m.improvement(challenger, champion)
    beyond = improvement - margin  # the challenger's improvement beyond the null's
    p: float | None = None
    test = "none"
    if metric == "accuracy" and n_champion and n_challenger:
        test = "two-proportion z"
        if margin == 0:  # the null is equality: one pooled proportion
            pooled = (champion * n_champion + challenger * n_challenger) / (
                n_champion + n_challenger
            )
            var = max(pooled * (1 - pooled), 1e-12) * (1 / n_champion + 1 / n_challenger)
        else:
            var = (
                max(champion * (1 - champion), 1e-12) / n_champion
                + max(challenger * (1 - challenger), 1e-12) / n_challenger
            )
        p = float(2 * stats.norm.sf(abs(beyond) / math.sqrt(var)))
    elif metric == "mae" and champion_rmse is not None and challenger_rmse is not None:
        test = "welch t on |error|"
        v1 = max(champion_rmse**2 - champion**2, 1e-12) / max(n_champion, 1)
        v2 = max(challenger_rmse**2 - challenger**2, 1e-12) / max(n_challenger, 1)
        t = beyond / math.sqrt(v1 + v2)
        dof = (v1 + v2) ** 2 / (v1**2 / max(n_champion - 1, 1) + v2**2 / max(n_challenger - 1, 1))
        p = float(2 * stats.t.sf(abs(t), dof))
    verdict = "inconclusive"
    if p is not None and p < significance:
        verdict = "challenger_better" if beyond > 0 else "challenger_worse"
    return ArmComparison(
        metric, champion, challenger, n_champion, n_challenger, improvement, test, p, verdict
    )
