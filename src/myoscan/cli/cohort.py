"""``myoscan cohort``: cohort statistics on metrics tables, and sarcopenia criteria.

Every analysis reads a metrics table (``--metrics``, from ``myoscan quantify``; long or
wide) joined to a participants table (``--participants``, BIDS ``participants.tsv``),
writes tidy CSVs and figures into ``--out-dir`` and a ``cohort_<analysis>.json`` record of
inputs, options, unmatched ids and outputs. All tables are computed before anything is
written, and the files of one analysis appear together or not at all.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from myoscan import __version__
from myoscan.cli._common import add_common_flags, comma_list, existing_path, positive_float, positive_int
from myoscan.errors import InputError
from myoscan.outputs import write_json, write_output_set, write_table

log = logging.getLogger(__name__)

PADJUST_METHODS = ("none", "bonf", "sidak", "holm", "fdr_bh", "fdr_by")


def cutoff_value(text: str) -> float | dict[str, float]:
    """Argparse type: ``7.0`` or ``male=7.0,female=5.5``."""
    if "=" not in text:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or male=X,female=Y, got {text!r}") from None
    values = {}
    for item in comma_list(text):
        key, _, value = item.partition("=")
        if key.strip().lower() not in {"male", "female"}:
            raise argparse.ArgumentTypeError(f"cut-off keys are male and female, got {key!r}")
        try:
            values[key.strip().lower()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number after {key}=, got {value!r}") from None
    if set(values) != {"male", "female"}:
        raise argparse.ArgumentTypeError(f"give both male= and female= cut-offs, got {text!r}")
    return values


def number_list(text: str) -> list[float]:
    """Argparse type: ``40,50,60`` -> ``[40.0, 50.0, 60.0]``."""
    try:
        return [float(v) for v in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 40,50,60, got {text!r}") from None


def _inputs(p: argparse.ArgumentParser, *, labels: bool = True) -> None:
    group = p.add_argument_group("inputs")
    group.add_argument(
        "--metrics",
        required=True,
        type=existing_path,
        metavar="TABLE",
        help="metrics table from myoscan quantify (long: subject, name, metrics; or wide)",
    )
    group.add_argument(
        "--participants",
        type=existing_path,
        metavar="TABLE",
        help="participants table (BIDS participants.tsv; participant_id or subject column)",
    )
    group.add_argument(
        "--session", metavar="SES", help="use only this session of a multi-session metrics table"
    )
    if labels:
        group.add_argument(
            "--labels",
            type=comma_list,
            metavar="A,B",
            help="analyse only these labels (name column) of a long table",
        )
    p.add_argument("-o", "--out-dir", required=True, type=Path, metavar="DIR", help="folder for the outputs")
    p.add_argument("--no-figures", action="store_true", help="write tables only")
    add_common_flags(p)  # fmt: skip


def add_parser(subparsers) -> None:
    """Add the ``cohort`` sub-command and its analyses."""
    parser = subparsers.add_parser(
        "cohort",
        help="cohort statistics (regression, logistic, trends, ANCOVA) and sarcopenia criteria",
        description="Statistics over metrics tables joined to participants: seed 000-004 analyses. "
        "See docs/cohort.md.",
    )
    sub = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    for name, (build, handler) in _ANALYSES.items():
        p = build(sub)
        p.set_defaults(cohort_handler=handler, analysis=name)
    parser.set_defaults(handler=run)


def _build_regress(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "regress",
        help="multiple linear regression per label (seed 000 Table 2)",
        description="Regress a metric on covariates per label: standardized beta (SE) and p "
        "per covariate, F, model p, R2, Shapiro-Wilk and Breusch-Pagan of the residuals. "
        "--partial adds partial correlations with residual plots, --emm marginal means.",
    )
    p.add_argument("--outcome", required=True, metavar="COLUMN", help="e.g. volume_ml or imf_pct")
    p.add_argument("--covariates", required=True, type=comma_list, metavar="A,B", help="e.g. age,bmi,sex")
    p.add_argument(
        "--partial",
        nargs="?",
        const=[],
        type=comma_list,
        metavar="A,B",
        help="partial correlations of the outcome with these covariates (default: continuous ones)",
    )
    p.add_argument("--emm", metavar="FACTOR", help="estimated marginal means per level of FACTOR, e.g. sex")
    _inputs(p)
    return p  # fmt: skip


def _build_hierarchical(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "hierarchical",
        help="R2 change of adding a variable (seed 000 Table 3)",
        description="Fit outcome ~ base, then base + each --add variable: standardized beta "
        "(SE), F change, p, delta R2, R2. {side} in a column name is replaced by the label's "
        "side, e.g. --outcome plantarflexion_force_{side}_n.",
    )
    p.add_argument("--outcome", required=True, metavar="COLUMN")
    p.add_argument("--base", required=True, type=comma_list, metavar="A,B", help="e.g. age,bmi,sex")
    p.add_argument("--add", required=True, type=comma_list, metavar="A,B", help="e.g. volume_ml,imf_pct")
    _inputs(p)
    return p  # fmt: skip


def _build_logistic(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "logistic",
        help="odds ratios, high vs low tertile (seed 001 Table 2, Fig. 5)",
        description="Logistic regression of 0/1 outcomes on the high vs low tertile of an "
        "exposure (or per SD), adjusted: OR, profile-likelihood 95 % CI, Wald CI, Wald p, "
        "events per group; forest plot.",
    )
    p.add_argument("--exposure", required=True, metavar="COLUMN", help="e.g. pa_ratio")
    p.add_argument("--outcomes", required=True, type=comma_list, metavar="A,B", help="0/1 columns")
    p.add_argument("--adjust", type=comma_list, default=[], metavar="A,B", help="e.g. age,sex,bmi")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--tertiles", action="store_true", default=True, help="high vs low tertile (default)")
    scale.add_argument("--per-sd", action="store_true", help="OR per 1 SD of the exposure instead")
    _inputs(p)
    return p  # fmt: skip


def _build_trend(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "trend",
        help="age strata, decline per decade, Cochran-Armitage (seed 001 Fig. 4)",
        description="Median/IQR and mean/SD per age stratum and group, change per decade "
        "(10 b1 +/- 1.96 x 10 SE) per group, share below a cut-off with the Cochran-Armitage "
        "trend test; box plots by age and group.",
    )
    p.add_argument("--measure", required=True, metavar="COLUMN", help="e.g. tmv_cm3")
    p.add_argument("--by", default="sex", metavar="COLUMN", help="grouping column (default sex; 'none')")
    p.add_argument("--age", default="age", metavar="COLUMN", help="age in years (default age)")
    p.add_argument(
        "--age-bins",
        type=number_list,
        default=[40, 50, 60, 70, 80],
        metavar="A,B",
        help="lower bounds of the age strata (default 40,50,60,70,80 -> 40-49 ... 80+)",
    )
    p.add_argument("--cutoff", type=cutoff_value, metavar="X", help="e.g. 7.0 or male=7.0,female=5.5")
    _inputs(p)
    return p  # fmt: skip


def _build_correlate(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "correlate",
        help="correlation with Fisher-z CI (seed 001, 003, 004)",
        description="Pearson (or Spearman) r with 95 % Fisher-z CI and p, per label and group.",
    )
    p.add_argument("--x", required=True, metavar="COLUMN")
    p.add_argument("--y", required=True, metavar="COLUMN")
    p.add_argument("--by", metavar="COLUMN", help="grouping column, e.g. sex")
    p.add_argument("--method", choices=("pearson", "spearman"), default="pearson")
    _inputs(p)
    return p  # fmt: skip


def _build_anova(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "anova",
        help="repeated-measures ANCOVA across muscles + paired t-tests (seed 002)",
        description="Within-subject factor = labels (long table) or --levels columns (wide); "
        "between factor and covariates optional. Sphericity: Mauchly, Greenhouse-Geisser, "
        "Huynh-Feldt. Follow-up paired t-tests between all levels.",
    )
    p.add_argument("--measure", required=True, metavar="COLUMN", help="e.g. imf_pct")
    p.add_argument(
        "--levels", type=comma_list, metavar="A,B", help="labels (long) or columns (wide) to compare"
    )
    p.add_argument("--between", metavar="COLUMN", help="between-subject factor, e.g. sex")
    p.add_argument("--covariates", type=comma_list, default=[], metavar="A,B", help="e.g. age,bmi")
    p.add_argument("--average-sides", action="store_true", help="average x_left and x_right into x first")
    p.add_argument("--padjust", choices=PADJUST_METHODS, default="none", help="correction of the t-tests")
    _inputs(p, labels=False)
    return p  # fmt: skip


def _build_ancova(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "ancova",
        help="one-way ANCOVA per label with marginal means (seed 002)",
        description="measure ~ factor + covariates per label (pingouin ancova) and the "
        "estimated marginal means of each factor level.",
    )
    p.add_argument("--measure", required=True, metavar="COLUMN")
    p.add_argument("--between", required=True, metavar="COLUMN", help="e.g. sex")
    p.add_argument("--covariates", type=comma_list, default=[], metavar="A,B", help="e.g. age,bmi")
    _inputs(p)
    return p  # fmt: skip


def _build_indices(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "indices",
        help="mass (1.06 g/mL), height2- and BMI-adjusted indices, z-scores",
        description="Adds <stem>mass_g, <volume>_m2, <stem>mass_g_m2, <stem>mass_g_per_bmi "
        "and <stem>mass_g_m2_bmi_z (seed 003 regression on BMI, sex, sex x BMI) per label.",
    )
    p.add_argument("--volume", default="volume_ml", metavar="COLUMN", help="volume in mL (default volume_ml)")
    p.add_argument("--height", default="height_m", metavar="COLUMN", help="height_m or height_cm")
    p.add_argument("--bmi", default="bmi", metavar="COLUMN")
    p.add_argument("--sex", default="sex", metavar="COLUMN")
    p.add_argument(
        "--density",
        type=positive_float,
        default=None,
        metavar="G_PER_ML",
        help="muscle density (default 1.06 g/mL, seed 003)",
    )
    _inputs(p)
    return p  # fmt: skip


def _build_sarcopenia(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "sarcopenia",
        help="EWGSOP2 / AWGS 2019 classification of a participants table",
        description="Adds low strength / muscle mass / performance flags, the category and "
        "0/1 outcome columns (usable by 'cohort logistic'). Measures without a column are "
        "skipped; cut-offs can be overridden as male=X,female=Y.",
    )
    p.add_argument("--participants", required=True, type=existing_path, metavar="TABLE")
    p.add_argument("--criteria", choices=("ewgsop2", "awgs2019", "both"), default="ewgsop2")
    p.add_argument("--sex", default="sex", metavar="COLUMN")
    p.add_argument("--grip", default="grip_kg", metavar="COLUMN", help="grip strength in kg")
    p.add_argument("--almi", default="almi_kg_m2", metavar="COLUMN", help="ALMI in kg/m2")
    p.add_argument("--asm", metavar="COLUMN", help="appendicular skeletal muscle mass in kg (EWGSOP2)")
    p.add_argument("--gait", default="gait_speed_m_s", metavar="COLUMN", help="gait speed in m/s")
    p.add_argument("--chair-stand", metavar="COLUMN", help="five-rise chair stand time in s")
    p.add_argument("--sppb", metavar="COLUMN", help="SPPB score")
    p.add_argument("--mass-method", choices=("dxa", "bia"), default="dxa", help="AWGS 2019 ALMI cut-off")
    p.add_argument("--grip-cutoff", type=cutoff_value, metavar="male=X,female=Y")
    p.add_argument(
        "--almi-cutoff",
        type=cutoff_value,
        metavar="male=X,female=Y",
        help="e.g. for an imaging mass index from 'cohort indices'",
    )
    p.add_argument("-o", "--out-dir", required=True, type=Path, metavar="DIR", help="folder for the outputs")
    add_common_flags(p)
    return p  # fmt: skip


def _build_simulate(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "simulate",
        help="write a simulated cohort with known effects (to try the analyses)",
        description="participants.tsv, metrics.csv (long: 6 calf muscles, volume_ml, "
        "imf_pct) and regional.csv (wide: tmv_cm3, tvi_cm3_m2, pa_ratio); true effects in "
        "myoscan.cohort.simulate.SimulationConfig.",
    )
    p.add_argument("--n", type=positive_int, default=300, help="number of participants (default 300)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--out-dir", required=True, type=Path, metavar="DIR")
    add_common_flags(p)
    return p  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run the chosen analysis; tables are computed first, then written."""
    args.cohort_handler(args)  # warnings (unmatched ids, few events ...): one line each, by cli.main
    return 0


# --------------------------------------------------------------------------- handlers


def _load(args: argparse.Namespace) -> tuple[pd.DataFrame, dict, str]:
    from myoscan.cohort import join_participants, read_cohort_table

    metrics = read_cohort_table(args.metrics)
    participants = read_cohort_table(args.participants) if args.participants else None
    table, report = join_participants(
        metrics, participants, session=args.session, metrics_source=args.metrics.name,
        participants_source=args.participants.name if args.participants else "participants table",
    )  # fmt: skip
    log.info("%s: %d subject(s) matched", args.metrics.name, report.n_matched)
    join = {"n_metrics_subjects": report.n_metrics_subjects, "n_participants": report.n_participants,
            "n_matched": report.n_matched, "metrics_only": list(report.metrics_only),
            "participants_only": list(report.participants_only)}  # fmt: skip
    # columns come from either file: name both, or a bad participants column blames the metrics file
    source = args.metrics.name + (f" joined with {args.participants.name}" if args.participants else "")
    return table, join, source


def _write(args: argparse.Namespace, tables: dict[str, pd.DataFrame], figures: dict[str, Callable],
           join: dict | None = None) -> list[str]:  # fmt: skip
    """Write tables, figures and the JSON record as one set (all or nothing); return the file names."""
    out: Path = args.out_dir
    writers: dict[Path, Callable] = {}
    for name, table in tables.items():
        writers[out / name] = lambda path, table=table: write_table(table, path)
    if not getattr(args, "no_figures", False):
        for name, draw in figures.items():
            writers[out / name] = draw
    written = [path.name for path in writers]
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
               if k not in {"handler", "cohort_handler", "quiet", "verbose"}}  # fmt: skip
    record = {"analysis": args.analysis, "myoscan_version": __version__, "options": options,
              "join": join, "outputs": written}  # fmt: skip
    writers[out / f"cohort_{args.analysis}.json"] = lambda path: write_json(record, path)
    write_output_set(writers)
    log.info("wrote %d file(s) to %s", len(writers), out)
    return written


def _label_rows(table: pd.DataFrame):
    from myoscan.cohort._data import label_frames

    return list(label_frames(table))


def _slug(label: str | None) -> str:
    return "" if label is None else "_" + "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _run_regress(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort import estimated_marginal_means, partial_correlations, plots, regress, table2

    table, join, source = _load(args)
    coefficients = regress(table, args.outcome, args.covariates, labels=args.labels, source=source)
    tables = {"regress_coefficients.csv": coefficients, "regress_table2.csv": table2(coefficients)}
    figures: dict[str, Callable] = {}
    if args.partial is not None:
        partial = partial_correlations(table, args.outcome, args.covariates, of=args.partial or None,
                                       labels=args.labels, source=source)  # fmt: skip
        tables["regress_partial.csv"] = partial
        for label, rows in _label_rows(table):
            if args.labels and label not in args.labels:
                continue
            chosen = partial if label is None else partial[partial["name"] == label]
            variables = list(dict.fromkeys(chosen["variable"]))
            if variables:
                figures[f"partial{_slug(label)}.png"] = (
                    lambda path, rows=rows, label=label, variables=variables: plots.plot_partial_residuals(
                        rows, args.outcome, args.covariates, variables, path, label=label, source=source
                    )
                )
    if args.emm:
        emm = estimated_marginal_means(table, args.outcome, args.covariates, args.emm, labels=args.labels,
                                       source=source)  # fmt: skip
        tables["regress_emm.csv"], tables["regress_emm_contrasts.csv"] = emm.means, emm.contrasts
        figures["regress_emm.png"] = lambda path: plots.plot_marginal_means(emm.means, path)
    return _write(args, tables, figures, join)


def _run_hierarchical(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort import hierarchical_regression

    table, join, source = _load(args)
    result = hierarchical_regression(
        table, args.outcome, args.base, args.add, labels=args.labels, source=source
    )
    return _write(args, {"hierarchical.csv": result}, {}, join)


def _run_logistic(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort import logistic_regression, plots

    table, join, source = _load(args)
    result = logistic_regression(
        table, args.exposure, args.outcomes, args.adjust, use_tertiles=not args.per_sd, labels=args.labels,
        source=source,
    )  # fmt: skip
    figures = {"logistic_forest.png": lambda path: plots.plot_forest(result, path)}
    return _write(args, {"logistic.csv": result}, figures, join)


def _run_trend(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort import AgeStrata, age_trend, plots

    table, join, source = _load(args)
    by = None if args.by.lower() == "none" else args.by
    strata = AgeStrata(age=args.age, by=by, edges=tuple(args.age_bins), cutoff=args.cutoff)
    trend = age_trend(table, args.measure, strata, labels=args.labels, source=source)
    tables = {"trend_strata.csv": trend.strata, "trend_decline.csv": trend.decline}
    if trend.trend_tests is not None:
        tables["trend_test.csv"] = trend.trend_tests
    figures = {}
    for label, rows in _label_rows(table):
        if label is None or label in set(trend.strata.get("name", [])):
            figures[f"trend{_slug(label)}.png"] = lambda path, rows=rows, label=label: plots.plot_age_boxes(
                rows, args.measure, path, strata, title=label, source=source
            )
    return _write(args, tables, figures, join)


def _run_correlate(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort import correlate

    table, join, source = _load(args)
    result = correlate(
        table, args.x, args.y, by=args.by, method=args.method, labels=args.labels, source=source
    )
    return _write(args, {"correlate.csv": result}, {}, join)


def _run_anova(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort import average_sides, repeated_measures_ancova

    table, join, source = _load(args)
    if args.average_sides:
        if "name" not in table.columns:
            raise InputError(f"{source}: --average-sides needs a long table with a 'name' column")
        table = average_sides(table, args.measure)
    res = repeated_measures_ancova(
        table, args.measure, levels=args.levels, between=args.between, covariates=args.covariates,
        padjust=args.padjust, source=source,
    )  # fmt: skip
    tables = {"anova_effects.csv": res.effects.assign(n_subjects=res.n_subjects),
              "anova_sphericity.csv": res.sphericity, "anova_pairwise.csv": res.pairwise}  # fmt: skip
    return _write(args, tables, {}, join)


def _run_ancova(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort import ancova, plots

    table, join, source = _load(args)
    aov, means = ancova(table, args.measure, args.between, args.covariates, labels=args.labels, source=source)
    figures = {"ancova_emm.png": lambda path: plots.plot_marginal_means(means, path)}
    return _write(args, {"ancova.csv": aov, "ancova_emm.csv": means}, figures, join)


def _run_indices(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort._data import per_label
    from myoscan.sarcopenia import MUSCLE_DENSITY_G_ML, muscle_indices

    table, join, source = _load(args)
    density = args.density or MUSCLE_DENSITY_G_ML

    def analyse(rows: pd.DataFrame, label: str | None) -> pd.DataFrame:
        return muscle_indices(rows, args.volume, height=args.height, bmi=args.bmi, sex=args.sex,
                              density_g_ml=density, source=source)  # fmt: skip

    result = per_label(table, analyse, labels=args.labels, source=source)
    return _write(args, {"indices.csv": result}, {}, join)


def _run_sarcopenia(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort import read_cohort_table
    from myoscan.sarcopenia import (
        Awgs2019Config,
        Ewgsop2Config,
        SarcopeniaColumns,
        SexCutoff,
        classify_awgs2019,
        classify_ewgsop2,
    )

    table = read_cohort_table(args.participants)
    source = args.participants.name
    columns = SarcopeniaColumns(sex=args.sex, grip_kg=args.grip, almi_kg_m2=args.almi, asm_kg=args.asm,
                                gait_speed_m_s=args.gait, chair_stand_s=args.chair_stand,
                                sppb_score=args.sppb)  # fmt: skip
    overrides = {}
    for name, value in (("grip_kg", args.grip_cutoff), ("almi_kg_m2", args.almi_cutoff)):
        if isinstance(value, float):
            raise InputError(
                f"--{name.split('_')[0]}-cutoff needs sex-specific values like male=27,female=16"
            )
        if value is not None:
            overrides[name] = SexCutoff(male=value["male"], female=value["female"])
    result, summaries = table, []
    if args.criteria in {"ewgsop2", "both"}:
        result = classify_ewgsop2(result, columns=columns, config=Ewgsop2Config(**overrides), source=source)
        summaries.append(_category_counts(result, "ewgsop2", args.sex))
    if args.criteria in {"awgs2019", "both"}:
        config = Awgs2019Config(mass_method=args.mass_method, **overrides)
        result = classify_awgs2019(result, columns=columns, config=config, source=source)
        summaries.append(_category_counts(result, "awgs2019", args.sex))
    tables = {"sarcopenia.csv": result, "sarcopenia_summary.csv": pd.concat(summaries, ignore_index=True)}
    return _write(args, tables, {}, None)


def _category_counts(table: pd.DataFrame, prefix: str, sex: str) -> pd.DataFrame:
    from myoscan.cohort import normalize_sex

    data = pd.DataFrame({"sex": normalize_sex(table[sex]).fillna("unknown"),
                         "category": table[f"{prefix}_category"].fillna("unknown")})  # fmt: skip
    counts = data.groupby(["sex", "category"]).size().rename("n").reset_index()
    counts["pct_of_sex"] = 100.0 * counts["n"] / counts.groupby("sex")["n"].transform("sum")
    return counts.assign(criteria=prefix)[["criteria", "sex", "category", "n", "pct_of_sex"]]


def _run_simulate(args: argparse.Namespace) -> list[str]:
    from myoscan.cohort.simulate import simulate_cohort

    cohort = simulate_cohort(args.n, seed=args.seed)
    tables = {"participants.tsv": cohort.participants, "metrics.csv": cohort.metrics,
              "regional.csv": cohort.regional}  # fmt: skip
    return _write(args, tables, {}, None)


_ANALYSES: dict[str, tuple[Callable, Callable]] = {
    "regress": (_build_regress, _run_regress),
    "hierarchical": (_build_hierarchical, _run_hierarchical),
    "logistic": (_build_logistic, _run_logistic),
    "trend": (_build_trend, _run_trend),
    "correlate": (_build_correlate, _run_correlate),
    "anova": (_build_anova, _run_anova),
    "ancova": (_build_ancova, _run_ancova),
    "indices": (_build_indices, _run_indices),
    "sarcopenia": (_build_sarcopenia, _run_sarcopenia),
    "simulate": (_build_simulate, _run_simulate),
}
