"""How often the map choice picks wrongly on synthetic series where the answer is known.

Two kinds of series (``hwc_risk.synthetic.SyntheticSeries``), ``--seeds`` of each:

- **history**: the truth is mostly a smooth field no covariate shows (``latent``) and
  reports repeat at the same addresses (strong repeat reporting): history is what
  predicts, so shipping the model alone (or a blend mostly model) is wrong;
- **covariates**: the truth is the covariates' (``refuge``) and nothing repeats: shipping
  history alone (or a blend mostly history) is wrong.

Each series is run through the pipeline (``model: auto``) for its last month; the table
gives what was shipped, how often that was wrong, and the pooled top-10 % captures on the
held-out months that the choice saw.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from hwc_risk.config import load_config
from hwc_risk.map_choice import blend_weight
from hwc_risk.pipeline import run
from hwc_risk.synthetic import RepeatReporting, SyntheticArea, SyntheticSeries

FAST = {
    "validation": {"folds": 2, "rolling_months": 2, "map_months": 8},
    "background": {"n_points": 3000},
}
HISTORY = ("past_counts", "recent_counts", "history_density")


def series(kind: str, seed: int) -> SyntheticSeries:
    if kind == "history":
        area = SyntheticArea(size=50, cell_size=200.0, seed=seed, truth_shape="latent")
        repeat = RepeatReporting(branching=0.6, decay=0.3, same_address=0.9, burst=0.3)
        return SyntheticSeries(area, n_incidents=700, repeat=repeat, seed=seed)
    area = SyntheticArea(size=50, cell_size=200.0, seed=seed)
    return SyntheticSeries(area, n_incidents=700, seed=seed)


def wrong(kind: str, chosen: str) -> bool:
    weight = blend_weight(chosen)
    if kind == "history":
        return chosen == "model" or (weight is not None and weight > 0.5)
    return chosen in HISTORY or (weight is not None and weight < 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--kinds", nargs="+", default=["history", "covariates"])
    args = parser.parse_args()
    print("| series | seeds | shipped | wrong | pooled top-10 %: shipped | model | best history |")
    print("|---|---|---|---|---|---|---|")
    for kind in args.kinds:
        shipped: Counter[str] = Counter()
        n_wrong, caps = 0, []
        start = time.perf_counter()
        for seed in range(args.seeds):
            s = series(kind, seed)
            with tempfile.TemporaryDirectory() as tmp:
                config = s.write(Path(tmp), extra_config=FAST)
                metrics = run(load_config(config), month=s.last_month()).metrics
            choice = metrics["map_choice"]
            chosen = str(choice["chosen"])
            shipped[chosen] += 1
            n_wrong += wrong(kind, chosen)
            pooled = choice["pooled"]
            best = max(pooled[h]["capture_rate_10"] for h in HISTORY)
            caps.append(
                (pooled[chosen]["capture_rate_10"], pooled["model"]["capture_rate_10"], best)
            )
        mean = [sum(c[i] for c in caps) / len(caps) for i in range(3)]
        picks = ", ".join(f"{name} {n}" for name, n in shipped.most_common())
        print(
            f"| {kind} | {args.seeds} | {picks} | {n_wrong} | {mean[0]:.3f} | {mean[1]:.3f} "
            f"| {mean[2]:.3f} |"
        )
        print(json.dumps({"kind": kind, "seconds": round(time.perf_counter() - start)}))


if __name__ == "__main__":
    main()
