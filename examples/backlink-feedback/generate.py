"""Seeded backlink tasks for the backlink-feedback example: each task places one link on one
site, and its outcome (``link_live``: the link is live and accepted) is known a few hours later.

    python generate.py data            # 14 days of labelled history, then 20 days of tasks

Writes ``history.csv`` (the 14 days before the story, labelled: the team's existing dataset)
and, for each story day, ``tasks-YYYY-MM-DD.csv`` (the tasks the automation will ask about,
no outcome) and ``outcomes-YYYY-MM-DD.jsonl`` (every task's outcome as the team's API serves
it; the automation's own log holds the automation's share of them, the README shows how).

Acceptance follows the site's domain authority, spam score, outbound links, age, the platform
and the anchor type. Three things change during the story: from the first day a CMS plug-in,
``guarded``, appears on 4% of the sites (ordinary sites, but the plug-in rejects almost every
link); from the second Monday a new platform, ``social``, appears (5% of the tasks): its
sites look weak but most accept the link; from the third Monday the plug-in spreads to a
quarter of the sites. A model that has not seen a change gets its tasks wrong.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

PER_DAY = 600
HISTORY_DAYS = 14
STORY_DAYS = 20
STORY_START = datetime(2026, 3, 2)  # a Monday
SOCIAL_FROM = STORY_START + timedelta(days=7)  # the new platform, the second Monday
SPREAD_FROM = STORY_START + timedelta(days=14)  # the plug-in spreads, the third Monday
SOCIAL_SHARE = 0.05


def guarded_share(day: datetime) -> float:
    """The share of tasks on sites with the plug-in: none before the story, then 4%, 25%."""
    return 0.0 if day < STORY_START else 0.04 if day < SPREAD_FROM else 0.25


PLATFORMS = {"blog": 0.6, "forum": -0.5, "directory": -0.2, "profile": 0.2}
ANCHORS = {"exact": -0.7, "brand": 0.5, "generic": 0.0}
CMS = {"wordpress": 0.1, "custom": -0.1, "drupal": 0.0}


def day_tasks(day: datetime, rng: np.random.Generator) -> pd.DataFrame:
    """One day's tasks with their outcomes."""
    n = PER_DAY
    platform = rng.choice(list(PLATFORMS), n, p=[0.35, 0.25, 0.2, 0.2]).astype(object)
    cms = rng.choice(list(CMS), n, p=[0.5, 0.3, 0.2]).astype(object)
    anchor = rng.choice(list(ANCHORS), n, p=[0.3, 0.3, 0.4])
    authority = np.clip(rng.normal(35, 15, n), 1, 100)
    spam = np.clip(rng.normal(4, 2.5, n), 0, 17)
    outbound = rng.gamma(2.0, 40, n)
    age = rng.gamma(2.0, 2.5, n)
    logit = 1.8 * (
        0.9
        + 0.05 * (authority - 35)
        - 0.35 * (spam - 4)
        - 0.006 * (outbound - 80)
        + 0.08 * (age - 5)
        + np.array([PLATFORMS[p] for p in platform])
        + np.array([ANCHORS[a] for a in anchor])
        + np.array([CMS[c] for c in cms])
    )
    live = rng.random(n) < 1 / (1 + np.exp(-logit))
    if day >= SOCIAL_FROM:  # weak-looking sites that mostly accept
        social = rng.random(n) < SOCIAL_SHARE
        platform[social] = "social"
        authority[social] = np.clip(rng.normal(12, 4, social.sum()), 1, 100)
        spam[social] = np.clip(rng.normal(7, 1.5, social.sum()), 0, 17)
        live[social] = rng.random(social.sum()) < 0.85
    if guarded_share(day) > 0:  # strong-looking sites whose plug-in rejects the link
        guarded = (rng.random(n) < guarded_share(day)) & (platform != "social")
        cms[guarded] = "guarded"  # ordinary good sites: only the cms tells them apart
        authority[guarded] = np.clip(rng.normal(45, 15, guarded.sum()), 1, 100)
        spam[guarded] = np.clip(rng.normal(3, 2, guarded.sum()), 0, 17)
        live[guarded] = rng.random(guarded.sum()) < 0.05
    created = day + timedelta(hours=8) + pd.to_timedelta(np.sort(rng.uniform(0, 10, n)), "h")
    completed = created + pd.to_timedelta(rng.uniform(1, 3, n), "h")
    return pd.DataFrame(
        {
            "task_id": [f"T{day:%y%m%d}-{i:03d}" for i in range(n)],
            "created_at": created.floor("s").strftime("%Y-%m-%dT%H:%M:%S"),
            "completed_at": completed.floor("s").strftime("%Y-%m-%dT%H:%M:%S"),
            "source": np.where(rng.random(n) < 0.5, "automation", "manual"),
            "platform": platform,
            "cms": cms,
            "anchor": anchor,
            "domain_authority": authority.round(1),
            "spam_score": spam.round(1),
            "outbound_links": outbound.round().astype(int),
            "site_age_years": age.round(1),
            "link_live": live.astype(int),
        }
    )


FEATURES = [
    "platform",
    "cms",
    "anchor",
    "domain_authority",
    "spam_score",
    "outbound_links",
    "site_age_years",
]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(14)
    first = STORY_START - timedelta(days=HISTORY_DAYS)
    history = [day_tasks(first + timedelta(days=d), rng) for d in range(HISTORY_DAYS)]
    frame = pd.concat(history, ignore_index=True)
    frame.drop(columns=["created_at", "source"]).to_csv(out / "history.csv", index=False)
    for d in range(STORY_DAYS):
        day = STORY_START + timedelta(days=d)
        tasks = day_tasks(day, rng)
        tasks[["task_id", "created_at", *FEATURES]].to_csv(
            out / f"tasks-{day:%Y-%m-%d}.csv", index=False
        )
        with (out / f"outcomes-{day:%Y-%m-%d}.jsonl").open("w") as fh:
            for row in tasks[["task_id", "source", "link_live", "completed_at"]].itertuples():
                record = {
                    "task_id": row.task_id,
                    "source": row.source,
                    "link_live": int(row.link_live),
                    "completed_at": row.completed_at,
                }
                fh.write(json.dumps(record) + "\n")
    print(
        f"wrote {out}: {len(frame)} labelled tasks ({HISTORY_DAYS} days), "
        f"{STORY_DAYS} days of tasks from {STORY_START:%Y-%m-%d}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data"))
