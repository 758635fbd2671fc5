"""Run the per-subject steps over a BIDS dataset as Dask tasks.

Each case (subject/session) is one task on a Dask cluster: a ``LocalCluster`` of worker
processes by default, or an existing cluster given by its scheduler address. A task never
raises: it returns a result record (done / skipped / failed with the failing step and
message), so one bad subject never stops the others. Every output is written atomically
and the provenance record is written last, so a run killed at any moment loses nothing
that finished and a re-run skips exactly the finished cases.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from myoscan import __version__
from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.outputs import write_json, write_table
from myoscan.pipeline import provenance
from myoscan.pipeline.bids import Case, discover, read_participants
from myoscan.pipeline.steps import STEPS, CaseContext, StepError
from myoscan.progress import progress

__all__ = ["CaseResult", "RunConfig", "RunSummary", "collect_cohort", "process_case", "run_pipeline"]

log = logging.getLogger(__name__)

PIPELINE_NAME = "myoscan"


@dataclass(frozen=True)
class RunConfig:
    """Parameters of a pipeline run.

    Only :meth:`parameters` (what changes the outputs) enters the provenance fingerprint;
    execution settings (workers, threads, scheduler) do not, so re-running a finished
    dataset on a different cluster skips it.
    """

    steps: tuple[str, ...] = ("quantify",)
    model: str | None = None
    scheme: str | None = None
    erode_iterations: int = 1
    device: str = "cpu"
    workers: int = 1
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    scheduler: str | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise InputError(f"unknown step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}")
        # Steps always run in data-flow order (stations are fused before Dixon maps are made ...).
        object.__setattr__(self, "steps", tuple(s for s in STEPS if s in self.steps))
        if "segment" in self.steps and not self.model:
            raise InputError(
                "the segment step needs a model: pass --model BUNDLE (see `myoscan models list`)"
            )
        if self.workers < 1 or self.threads_per_worker < 1:
            raise InputError(
                f"workers and threads must be >= 1, got {self.workers} and {self.threads_per_worker}"
            )
        if self.scheme is not None:
            from myoscan.labels import load_catalog

            load_catalog().scheme(self.scheme)  # an unknown scheme is a bad argument, not 1 failure per case
        _check_memory_limit(self.memory_limit)

    def parameters(self) -> dict[str, Any]:
        """Return the settings that change the outputs (entered into the provenance fingerprint)."""
        return {
            "steps": list(self.steps),
            "model": self.model,
            "scheme": self.scheme,
            "erode_iterations": self.erode_iterations,
        }


def _check_memory_limit(value: str | float | None) -> None:
    """Raise InputError unless Dask understands ``value`` as a per-worker memory limit."""
    from distributed.worker_memory import parse_memory_limit

    try:
        limit = parse_memory_limit(value, 1, logger=log)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"memory limit {value!r} not understood ({exc}); give e.g. 4GiB, 8GB or auto"
        ) from None
    if limit is not None and limit < 0:
        raise InputError(f"memory limit {value!r} is negative; give e.g. 4GiB, 8GB or auto")


@dataclass(frozen=True)
class CaseResult:
    """Outcome of one case."""

    subject: str
    session: str | None
    status: str  # 'done' | 'skipped' | 'failed'
    step: str | None = None
    message: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class RunSummary:
    """Outcome of a run."""

    results: tuple[CaseResult, ...]
    seconds: float
    out_dir: Path
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        """Number of failed cases."""
        return self.counts.get("failed", 0)

    @property
    def subjects_per_hour(self) -> float:
        """Processed (done) cases per wall-clock hour; NaN if none were processed."""
        done = self.counts.get("done", 0)
        return done / self.seconds * 3600.0 if done and self.seconds > 0 else float("nan")

    def describe(self) -> str:
        """One line for the terminal."""
        rate = self.subjects_per_hour
        rate_text = f", {rate:.0f} subjects/hour" if rate == rate else ""
        return (
            f"{self.counts.get('done', 0)} done, {self.counts.get('skipped', 0)} skipped, "
            f"{self.n_failed} failed in {self.seconds:.1f} s{rate_text}; outputs in {self.out_dir}"
        )


def _set_threads(threads: int) -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def process_case(
    case: Case, config: RunConfig, dataset: str, out_root: str, model_sha256: str | None = None
) -> CaseResult:
    """Run the configured steps on one case; never raises.

    A case whose provenance record does not match the current inputs and parameters is
    first invalidated -- its record and the outputs the record lists are deleted -- so
    that a case failing now leaves no results of older inputs behind.

    Parameters
    ----------
    case : Case
        The subject/session.
    config : RunConfig
        Steps and parameters.
    dataset, out_root : str
        BIDS root and derivatives root (strings: they travel to Dask workers).
    model_sha256 : str, optional
        Hash of ``config.model`` computed by the caller for this run (computed here if
        omitted).

    Returns
    -------
    CaseResult
    """
    started = provenance.now()
    clock = time.perf_counter()
    step = "hash inputs"
    try:
        context = CaseContext(
            case=case, dataset=Path(dataset), out_dir=Path(out_root) / case.relative_dir, config=config,
            model_sha256=model_sha256,
        )  # fmt: skip
        _set_threads(config.threads_per_worker)
        _remove_stale_temporaries(context.out_dir)
        inputs = context.input_hashes()
        expected = provenance.fingerprint(inputs, context.fingerprint_parameters())
        record_path = context.out_dir / f"{case.key}_provenance.json"
        record = provenance.read_record(record_path)
        if provenance.matches(record, expected, context.out_dir):
            return CaseResult(case.subject, case.session, "skipped", seconds=time.perf_counter() - clock)
        _invalidate(record, record_path)
        for step in config.steps:
            STEPS[step](context)
        step = "provenance"
        record = provenance.make_record(
            inputs=inputs,
            parameters=context.fingerprint_parameters(),
            outputs=context.outputs,
            started=started,
            finished=provenance.now(),
            model_sha256=context.model_sha256,
            dataset=dataset,
        )
        write_json(record, record_path)
    except Exception as exc:  # one subject's failure is recorded, never propagated
        message = str(exc) if isinstance(exc, (InputError, StepError)) else f"{type(exc).__name__}: {exc}"
        log.debug("case %s failed at %s:\n%s", case.key, step, traceback.format_exc())
        return CaseResult(
            case.subject,
            case.session,
            "failed",
            step,
            message.splitlines()[0] if message else "",
            time.perf_counter() - clock,
        )
    return CaseResult(case.subject, case.session, "done", seconds=time.perf_counter() - clock)


def _invalidate(record: dict[str, Any] | None, record_path: Path) -> None:
    """Delete a provenance record that no longer matches, then the outputs it lists.

    The record goes first: a run killed in between leaves outputs without a record,
    which count as unfinished (re-run, and left out of the cohort tables).
    """
    record_path.unlink(missing_ok=True)
    outputs = record.get("outputs", []) if isinstance(record, dict) else []
    for name in outputs if isinstance(outputs, list) else []:
        (record_path.parent / Path(str(name)).name).unlink(missing_ok=True)


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files left by a run that was killed while writing this case.

    Only one task handles a case at a time, so any temporary file in its folder is stale.
    """
    if folder.is_dir():
        for stale in folder.glob(".*.tmp*"):
            stale.unlink(missing_ok=True)


@contextmanager
def dask_client(config: RunConfig) -> Iterator[Any]:
    """Yield a Dask client: to ``config.scheduler`` if given, else to a new LocalCluster."""
    from distributed import Client, LocalCluster

    if config.scheduler:
        try:
            client = Client(config.scheduler)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(
                f"cannot connect to the Dask scheduler at {config.scheduler} ({exc}); check the address "
                "(tcp://host:port) and that the scheduler is running"
            ) from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=config.workers,
            threads_per_worker=config.threads_per_worker,
            processes=True,
            memory_limit=config.memory_limit,
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _dataset_description(out_dir: Path, dataset: Path) -> None:
    path = out_dir / "dataset_description.json"
    if path.is_file():
        return
    write_json(
        {
            "Name": f"myoscan derivatives of {dataset.name}",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [
                {
                    "Name": PIPELINE_NAME,
                    "Version": __version__,
                    "CodeURL": "https://github.com/myoscan/myoscan",
                }
            ],
        },
        path,
    )


def _errors_table(results: list[CaseResult]) -> pd.DataFrame:
    failed = [r for r in results if r.status == "failed"]
    return pd.DataFrame(
        [asdict(r) for r in failed], columns=["subject", "session", "status", "step", "message", "seconds"]
    ).drop(columns=["status"])


def run_pipeline(
    dataset: PathLike,
    out_dir: PathLike,
    config: RunConfig,
    *,
    subjects: list[str] | None = None,
    show_progress: bool = True,
    on_result: Callable[[CaseResult], None] | None = None,
) -> RunSummary:
    """Process every case of a BIDS dataset on a Dask cluster.

    Parameters
    ----------
    dataset : str or os.PathLike
        BIDS root.
    out_dir : str or os.PathLike
        Derivatives root (e.g. ``<dataset>/derivatives/myoscan``).
    config : RunConfig
        Steps, parameters and execution settings.
    subjects : list of str, optional
        Restrict to these subjects.
    show_progress : bool
        Progress bar with ETA on stderr.
    on_result : callable, optional
        Called with each :class:`CaseResult` as it arrives.

    Returns
    -------
    RunSummary
        Also written: ``errors.tsv`` (failed cases) and the cohort tables.
    """
    from distributed import as_completed

    from myoscan.pipeline.steps import model_sha256

    root, out = Path(dataset).resolve(), Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder; give a derivatives folder with -o")
    cases = discover(root, subjects=subjects, exclude=out)
    read_participants(root)  # a broken participants.tsv is a bad argument: stop before any subject runs
    model_hash = model_sha256(config.model) if config.model else None  # a missing model fails here, once
    out.mkdir(parents=True, exist_ok=True)
    _dataset_description(out, root)
    results: list[CaseResult] = []
    clock = time.perf_counter()
    with dask_client(config) as client:
        futures = {
            client.submit(process_case, case, config, str(root), str(out), model_hash, pure=False): case
            for case in cases
        }
        for future in progress(
            as_completed(futures), total=len(futures), desc="subjects", unit="subj", enabled=show_progress
        ):
            case = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker died (KilledWorker, memory limit ...)
                result = CaseResult(
                    case.subject, case.session, "failed", "worker", f"{type(exc).__name__}: {exc}"
                )
            results.append(result)
            if on_result is not None:
                on_result(result)
    seconds = time.perf_counter() - clock
    write_table(_errors_table(results), out / "errors.tsv")
    collect_cohort(out, read_participants(root))
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    return RunSummary(
        tuple(sorted(results, key=lambda r: (r.subject, r.session or ""))), seconds, out, counts
    )


def _subject_tables(out_dir: Path, suffix: str) -> pd.DataFrame | None:
    """Stack the per-case ``_<suffix>.tsv`` files of finished cases (listed in their provenance record)."""
    tables = []
    for path in sorted(out_dir.glob(f"sub-*/**/anat/*_{suffix}.tsv")):
        key = path.name[: -len(f"_{suffix}.tsv")]
        record = provenance.read_record(path.parent / f"{key}_provenance.json")
        if not record or path.name not in record.get("outputs", []):
            log.info("%s: left out of the cohort tables (its case did not finish)", path.name)
            continue
        table = pd.read_csv(path, sep="\t")
        subject, _, session = key.partition("_")
        table.insert(0, "session", session or pd.NA)
        table.insert(0, "subject", subject)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else None


#: Participant columns that look like personal identifiers are never copied into derivatives.
#: Matched on snake_case words, so DICOM keywords (``PatientName``, ``PatientBirthDate``,
#: ``OtherPatientIDs``) and spaced names (``Patient Name``) are caught too.
_IDENTIFIER_COLUMN = re.compile(
    r"(^|_)(name|first_?name|last_?name|surname|birth|dob|date_of_birth|birth_?date|mrn|patient_?ids?|"
    r"address|street|zip|postcode|phone|email|e_mail|ssn|nhs_?number|accession)($|_)",
    re.IGNORECASE,
)


def _identifier_words(column: str) -> str:
    """``PatientBirthDate`` / ``Patient Name`` -> ``Patient_Birth_Date`` / ``Patient_Name``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]{2})", "_", column)
    return re.sub(r"[^0-9A-Za-z]+", "_", words)


def _without_identifiers(participants: pd.DataFrame) -> pd.DataFrame:
    """Drop participant columns whose names look like personal identifiers (with a warning)."""
    dropped = [
        c for c in participants.columns
        if c != "participant_id" and _IDENTIFIER_COLUMN.search(_identifier_words(str(c)))
    ]  # fmt: skip
    if dropped:
        warnings.warn(
            f"participants.tsv columns {', '.join(dropped)} look like personal identifiers and are "
            "not copied into the cohort tables",
            stacklevel=3,
        )
    return participants.drop(columns=dropped)


def collect_cohort(out_dir: PathLike, participants: pd.DataFrame | None) -> dict[str, Path]:
    """Gather every subject's metrics into cohort tables (CSV and Parquet).

    The tables are rebuilt from the per-subject files on disk, so a resumed run yields
    exactly one row per subject and label; only files listed in their case's provenance
    record (finished cases) are used. Participant columns are joined on the subject id,
    except columns that look like personal identifiers (names, dates of birth, record numbers).
    """
    out = Path(out_dir)
    written: dict[str, Path] = {}
    extra = None
    if participants is not None:
        extra = _without_identifiers(participants).rename(columns={"participant_id": "subject"})
    for suffix in ("metrics", "indices"):
        table = _subject_tables(out, suffix)
        if table is None:  # no finished case: a cohort table of an earlier run would be stale
            for ext in ("csv", "parquet"):
                (out / f"cohort_{suffix}.{ext}").unlink(missing_ok=True)
            continue
        if extra is not None:
            table = table.merge(extra, on="subject", how="left", suffixes=("", "_participant"))
        if table["session"].isna().all():
            table = table.drop(columns="session")
        for ext in ("csv", "parquet"):
            written[f"{suffix}.{ext}"] = write_table(table, out / f"cohort_{suffix}.{ext}")
    return written
