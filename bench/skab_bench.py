"""The online detectors on SKAB-format files, scored with SKAB's protocol, beside its leaderboard.

    .venv/bin/python bench/skab_bench.py --data ../shared/data/skab [--no-crosscheck]

Every `;`-separated CSV under --data (recursively) with `datetime`, `anomaly` and `changepoint`
columns is one series; files without labels (anomaly-free) are listed and skipped. Each detector
runs record by record over the whole file: the first 400 rows (SKAB's training rows) are its
warm-up, which fits it and calibrates its threshold; the rest are scored. Counts are pooled over
all test rows of all files (F1, FAR, MAR); the NAB score takes the edges of the alarm series as
detected changepoints and a 60 s window to the right of each labelled changepoint.

The supervised LightGBM baseline (etl/quality/baseline.py) is scored time-ordered: each file by a
model trained on the files recorded before it, beside the recipe on the same files.

Cross-checks of the recipe's hyperparameters (a small grid, the chosen recipe is one of its
points; the threshold rule is in it too: the old quantile x margin points beside the warm-up's
maximum): per folder, leave-one-file-out (pick the grid point best on the other files, score the
left-out file with it, pool), leave-one-folder-out (pick on the other folders, score the folder,
pool), and folder-vs-folder (pick on one folder, score on the others).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from etl.detectors import halfspace, hotelling, robust_z  # noqa: E402
from etl.detectors.run import run  # noqa: E402
from etl.quality import baseline  # noqa: E402
from etl.quality import metrics as m  # noqa: E402

TRAIN_ROWS = 400
NAB_WINDOW_S = 60.0
DRIFTING = ("Temperature", "Thermocouple")  # the thermal sensors: slow drift, most false alarms
LABELS = ("datetime", "anomaly", "changepoint")

LEADERBOARD = [  # SKAB's published figures over its 34 files: F1, FAR %, MAR %, NAB standard
    ("Conv-AE", 0.78, 13.55, 28.02, 23.61),
    ("MSET", 0.78, 39.73, 14.13, 13.84),
    ("T-squared+Q (PCA)", 0.76, 26.62, 24.92, 25.35),
    ("LSTM-AE", 0.74, 29.96, 25.92, 23.51),
    ("T-squared", 0.66, 19.21, 42.60, 19.54),
    ("Isolation forest", 0.29, 2.56, 82.89, 26.16),
]


@dataclass(frozen=True)
class Series:
    name: str
    group: str
    times: np.ndarray
    rows: np.ndarray
    anomaly: np.ndarray
    changepoint: np.ndarray
    features: tuple[str, ...]


def load(data: Path) -> tuple[list[Series], list[Series], list[str]]:
    """Labelled series, unlabelled ones (taken as anomaly-free), and one line per CSV skipped with its reason."""
    series, unlabelled, skipped = [], [], []
    for path in sorted(data.rglob("*.csv")):
        name = str(path.relative_to(data))
        frame = pd.read_csv(path, sep=";")
        if "datetime" not in frame.columns:
            skipped.append(f"{name}: no datetime column")
            continue
        labelled = "anomaly" in frame.columns and "changepoint" in frame.columns
        if not labelled:  # SKAB's anomaly-free file: every row normal, scored for false alarms only
            frame = frame.assign(anomaly=frame.get("anomaly", 0), changepoint=frame.get("changepoint", 0))
        if len(frame) <= TRAIN_ROWS:
            skipped.append(f"{name}: {len(frame)} rows, not more than the {TRAIN_ROWS} training rows")
            continue
        features = tuple(c for c in frame.columns if c not in LABELS)
        (series if labelled else unlabelled).append(
            Series(
                name=name,
                group=path.relative_to(data).parts[0] if len(path.relative_to(data).parts) > 1 else ".",
                times=pd.to_datetime(frame["datetime"], format="%Y-%m-%d %H:%M:%S").to_numpy(),
                rows=frame[list(features)].to_numpy(dtype=float),
                anomaly=frame["anomaly"].to_numpy().astype(int),
                changepoint=frame["changepoint"].to_numpy().astype(int),
                features=features,
            )
        )
    return series, unlabelled, skipped


def drifting(s: Series) -> tuple[int, ...]:
    return tuple(i for i, f in enumerate(s.features) if f in DRIFTING)


@dataclass(frozen=True)
class Entry:
    label: str
    detector: ModuleType | None  # None: alarms on every test row (the 54 % trap)
    params: Any = None
    thermal: str = "keep"  # keep, exclude or detrend the drifting sensors

    def params_for(self, s: Series) -> Any:
        if self.thermal == "exclude":
            return replace(self.params, exclude=drifting(s))
        if self.thermal == "detrend":
            return replace(self.params, detrend=drifting(s))
        return self.params


# The recipe: hotelling's defaults (span 5, shrink 0.3, the warm-up's largest T² as threshold after glitch rows are
# trimmed, release 0.5, rebase 0.01); leave-one-file-out and leave-one-folder-out estimate it on files not seen.
RECIPE = hotelling.Params()

ENTRIES = [
    Entry("always alarm", None),
    Entry("HalfSpaceTrees (reference recipe, calibrated threshold)", halfspace, halfspace.Params()),
    Entry("robust z max, thermal excluded", robust_z, robust_z.Params(), "exclude"),
    Entry("Hotelling T², all sensors as they are", hotelling, RECIPE),
    Entry("Hotelling T², thermal detrended", hotelling, RECIPE, "detrend"),
    Entry("**Hotelling T², thermal excluded (recipe)**", hotelling, RECIPE, "exclude"),
]

SPANS, REBASES = (5.0, 10.0), (0.001, 0.003, 0.01)
GRID = [  # the earlier recipe's grid (the 0.99 quantile of the warm-up's T² times a margin), then the maximum's
    *(
        replace(RECIPE, span=span, quantile=0.99, margin=margin, rebase=rebase, trim=0.0)
        for span, margin, rebase in itertools.product(SPANS, (1.25, 1.5, 2.0, 2.5), REBASES)
    ),
    *(replace(RECIPE, span=span, rebase=rebase) for span, rebase in itertools.product(SPANS, REBASES)),
]


def alarms_of(entry: Entry, s: Series) -> tuple[np.ndarray, float]:
    """Alarms over the test rows and the records per second of the run."""
    if entry.detector is None:
        return np.ones(len(s.rows) - TRAIN_ROWS, dtype=bool), float("nan")
    started = time.perf_counter()
    _, alarms, _ = run(entry.detector, entry.params_for(s), s.rows)
    return alarms[TRAIN_ROWS:], len(s.rows) / (time.perf_counter() - started)


def scores(series: list[Series], alarms: list[np.ndarray]) -> dict[str, float]:
    """Pooled point metrics, NAB profiles and event figures over the test rows of the series."""
    counts, nab_input, events, seconds = m.Counts(), [], {"events": 0, "detected": 0, "false_events": 0}, 0.0
    for s, alarm in zip(series, alarms, strict=True):
        truth = s.anomaly[TRAIN_ROWS:]
        counts = counts + m.confusion(truth, alarm)
        nab_input.append((s.times[TRAIN_ROWS:], s.changepoint[TRAIN_ROWS:], m.changepoints_from_alarms(alarm)))
        found = m.event_counts(truth, alarm)
        for key in events:
            events[key] += found[key]
        t = m.to_seconds(s.times[TRAIN_ROWS:])
        seconds += t[-1] - t[0] + 1.0
    result = m.point_metrics(counts) | m.nab_score(nab_input, width=NAB_WINDOW_S)
    result["event_recall"] = m.event_recall(events)
    result["false_per_week"] = m.false_events_per_sensor_week(events["false_events"], seconds)
    return result


def objective(result: dict[str, float]) -> float:
    """What the cross-checks pick a grid point by: F1 plus NAB standard / 100, both count."""
    return result["f1"] + result["standard"] / 100


def row(label: str, r: dict[str, float], extra: str = "") -> str:
    return (
        f"| {label} | {r['f1']:.3f} | {r['far']:.2f} | {r['mar']:.2f} | {r['standard']:.2f} | {r['low_fp']:.2f} "
        f"| {r['low_fn']:.2f} | {r['event_recall']:.2f} | {r['false_per_week']:.0f} |{extra}"
    )


HEADER = (
    "| detector | F1 | FAR % | MAR % | NAB std | NAB low FP | NAB low FN | event recall | false events / sensor-week |"
)


def baseline_lines(series: list[Series]) -> list[str]:
    """The supervised LightGBM baseline, time-ordered: each file scored by a model of the files recorded before it,
    beside the recipe on the same files (the first three files train only)."""
    labelled = [baseline.Labelled(s.name, pd.Timestamp(s.times[0]), s.rows, s.anomaly) for s in series]
    started = time.perf_counter()
    held_out = baseline.forward_chain(labelled, series[0].features)
    seconds = time.perf_counter() - started
    scored = [s for s in series if s.name in held_out]
    recipe = Entry("recipe", hotelling, RECIPE, "exclude")
    lines = ["", f"Supervised baseline (LightGBM, windows 5/15/30 s, {len(scored)} files after the first 3 in time; "
             f"{len(held_out)} fits in {seconds:.0f} s)", "", HEADER, "|" + "---|" * 9]  # fmt: skip
    lines.append(
        row(
            "LightGBM baseline, trained on earlier files",
            scores(scored, [held_out[s.name][TRAIN_ROWS:] for s in scored]),
        )
    )
    lines.append(row("recipe on the same files", scores(scored, [alarms_of(recipe, s)[0] for s in scored])))
    return lines


EARLIER = replace(RECIPE, quantile=0.99, margin=1.25, trim=0.0)  # the threshold rule before the warm-up's maximum


def glitched(s: Series, feature: int, sigmas: float, at: int = 200) -> Series:
    """The series with one reading of a feature `sigmas` training-row standard deviations too high, in the warm-up."""
    rows = s.rows.copy()
    rows[at, feature] += sigmas * np.nanstd(rows[:TRAIN_ROWS, feature])
    return replace(s, rows=rows)


def glitch_lines(series: list[Series]) -> list[str]:
    """How one glitching reading in each file's warm-up moves the recipe and the earlier threshold rule."""
    title = "One glitch in the warm-up (a single reading 20 or 40 training sigmas high at row 200 of every file)"
    lines = ["", title, "", HEADER, "|" + "---|" * 9]
    rules = (
        ("recipe (warm-up maximum, glitches trimmed)", RECIPE),
        ("warm-up maximum, no trimming", replace(RECIPE, trim=0.0)),
        ("earlier rule (0.99 quantile x 1.25)", EARLIER),
    )
    for label, params in rules:
        r = scores(series, [alarms_of(Entry(label, hotelling, params, "exclude"), s)[0] for s in series])
        lines.append(row(f"{label}, no glitch", r))
    for name in (f for f in ("Accelerometer1RMS", "Volume Flow RateRMS") if f in series[0].features):
        j = series[0].features.index(name)
        for sigmas in (20.0, 40.0):
            bent = [glitched(s, j, sigmas) for s in series]
            for label, params in rules:
                r = scores(bent, [alarms_of(Entry(label, hotelling, params, "exclude"), s)[0] for s in bent])
                lines.append(row(f"{label}, {name} +{sigmas:g} sigma", r))
    return lines


def crosschecks(series: list[Series]) -> list[str]:
    """Per-folder figures of the recipe, leave-one-file-out and folder-vs-folder over the grid."""
    recipe = Entry("recipe", hotelling, RECIPE, "exclude")
    grid_alarms = [[alarms_of(Entry("", hotelling, g, "exclude"), s)[0] for s in series] for g in GRID]
    recipe_alarms = grid_alarms[GRID.index(recipe.params)]
    lines = ["", f"Cross-checks (grid of {len(GRID)}: span 5/10 x rebase 0.001/0.003/0.01 x threshold: the warm-up's "
             "0.99 quantile x margin 1.25/1.5/2/2.5, or its maximum)", ""]  # fmt: skip
    lines += [HEADER + " picked |", "|" + "---|" * 10]
    groups = sorted({s.group for s in series})
    for group in groups:
        keep = [i for i, s in enumerate(series) if s.group == group]
        r = scores([series[i] for i in keep], [recipe_alarms[i] for i in keep])
        lines.append(row(f"recipe on {group} only ({len(keep)} files)", r, " - |"))

    def best(indices: list[int]) -> int:
        picked = [scores([series[i] for i in indices], [a[i] for i in indices]) for a in grid_alarms]
        return int(np.argmax([objective(r) for r in picked]))

    def describe(g: int) -> str:
        p = GRID[g]
        threshold = "max" if p.quantile == 1 else f"q{p.quantile:g} x {p.margin:g}"
        return f"span {p.span:g} {threshold} rebase {p.rebase:g}"

    everything = list(range(len(series)))
    held_out, picks = [], []
    for i in everything:
        g = best([j for j in everything if j != i])
        held_out.append(grid_alarms[g][i])
        picks.append(describe(g))
    counts = {p: picks.count(p) for p in picks}
    lines.append(row("leave-one-file-out", scores(series, held_out), f" {counts} |"))
    if len(groups) > 1:
        pooled, picked = [np.zeros(0, dtype=bool)] * len(series), []
        for group in groups:  # leave-one-folder-out: each folder scored by the point best on the others
            g = best([i for i in everything if series[i].group != group])
            picked.append(f"{group} scored with {describe(g)}")
            for i in (i for i in everything if series[i].group == group):
                pooled[i] = grid_alarms[g][i]
        lines.append(row("leave-one-folder-out", scores(series, pooled), f" {'; '.join(picked)} |"))
        for group in groups:
            train = [i for i, s in enumerate(series) if s.group == group]
            test = [i for i in everything if i not in train]
            g = best(train)
            r = scores([series[i] for i in test], [grid_alarms[g][i] for i in test])
            lines.append(row(f"picked on {group}, scored on the rest ({len(test)} files)", r, f" {describe(g)} |"))
    best_all = best(everything)
    r = scores(series, grid_alarms[best_all])
    lines.append(row("best grid point on all files (in-sample, optimistic)", r, f" {describe(best_all)} |"))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of SKAB-format CSVs (searched recursively)")
    parser.add_argument("--no-crosscheck", action="store_true", help="skip the grid cross-checks (about 20 s)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: --data {args.data} is not a folder", file=sys.stderr)
        return 2
    try:
        series, unlabelled, skipped = load(args.data)
    except (ValueError, pd.errors.ParserError) as exc:
        print(f"error: cannot read the SKAB files under {args.data}: {exc}", file=sys.stderr)
        return 2
    if not series:
        reasons = "".join(f"; skipped {line}" for line in skipped)
        print(f"error: no labelled SKAB-format CSV under {args.data}{reasons}", file=sys.stderr)
        return 2
    test_rows = sum(len(s.rows) - TRAIN_ROWS for s in series)
    anomalous = sum(int(s.anomaly[TRAIN_ROWS:].sum()) for s in series)
    print(f"{len(series)} labelled files, {test_rows} test rows ({100 * anomalous / test_rows:.1f} % anomalous)")
    for line in skipped:
        print(f"skipped {line}")
    print()
    print(HEADER + " records/s |")
    print("|" + "---|" * 10)
    for entry in ENTRIES:
        runs = [alarms_of(entry, s) for s in series]
        rate = np.nanmedian([r for _, r in runs]) if entry.detector else float("nan")
        print(row(entry.label, scores(series, [a for a, _ in runs]), f" {rate:,.0f} |" if rate == rate else " - |"))
    if unlabelled:
        names = ", ".join(s.name for s in unlabelled)
        print(f"\nFalse alarms on the unlabelled files ({names}; rows after {TRAIN_ROWS}, taken as normal):\n")
        print("| detector | FAR % | false events / sensor-week |")
        print("|---|---|---|")
        for entry in ENTRIES[1:]:
            r = scores(unlabelled, [alarms_of(entry, s)[0] for s in unlabelled])
            print(f"| {entry.label} | {r['far']:.2f} | {r['false_per_week']:.0f} |")
        for warmup in (1200, 2400):  # a longer warm-up than SKAB's 400 rows, as a real pump would get
            params = replace(RECIPE, warmup=warmup)
            alarms = [run(hotelling, replace(params, exclude=drifting(s)), s.rows)[1][warmup:] for s in unlabelled]
            far = 100 * sum(int(a.sum()) for a in alarms) / sum(a.size for a in alarms)
            print(f"| recipe with a warm-up of {warmup} records (FAR over the rows after it) | {far:.2f} | - |")
    print()
    print("Published SKAB leaderboard (all 34 files, its own protocol):")
    print()
    print("| detector | F1 | FAR % | MAR % | NAB std |")
    print("|---|---|---|---|---|")
    for name, f1, far, mar, nab in LEADERBOARD:
        print(f"| {name} | {f1:.2f} | {far:.2f} | {mar:.2f} | {nab:.2f} |")
    print("\n".join(baseline_lines(series)))
    if not args.no_crosscheck:
        print("\n".join(crosschecks(series)))
        print("\n".join(glitch_lines(series)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
