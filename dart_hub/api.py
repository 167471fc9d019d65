"""dart-hub from Python: every stage is one call that takes one typed spec.

    from dart_hub import AdaptSpec, adapt, push
    result = adapt(AdaptSpec(student="./my-model", dataset="./my.jsonl", engine="transformers",
                             limit=20, output="out/x"))
    result.summary["kept"], result.output           # what `dart-hub adapt` prints, the folder
    push(result.output, "me/my-dart-set")            # one commit, as `dart-hub push`

A spec has one field per option of the command, with the same name and default (`n_sim` is
`--n-sim`), and checks its values as the command line does. Errors are `DartHubError` with the
command's one-line message. The commands in `dart_hub.commands` are this module plus printing;
recipes (`run_recipe`), the toy demo and the distributed training launcher call these
functions (or the stage modules behind them), never a click command.

The other commands are functions too: `inspect(InspectSpec)`, `merge(shards_dir, output)`,
`card(folder)`, `report(paths)`, `prefetch(recipes)`, `mapper_train(MapperTrainSpec)` and
`demo(DemoSpec)`, each returning what its command prints as a typed result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError
from dart_hub.inspection import Inspection
from dart_hub.methods.mapper.stage import MapperTrainResult
from dart_hub.prefetch import Fetched
from dart_hub.publish.rerender import CardResult
from dart_hub.report.build import ReportResult
from dart_hub.shards import MergeResult
from dart_hub.specs import AdaptSpec, EvalSpec, InspectSpec, MapperTrainSpec, TrainSpec
from dart_hub.toy.demo import DemoResult, DemoSpec

__all__ = [
    "AdaptResult", "AdaptSpec", "CardResult", "Comparison", "DemoResult", "DemoSpec", "EvalResult", "EvalSpec",
    "Fetched", "InspectSpec", "Inspection", "MapperTrainResult", "MapperTrainSpec", "MergeResult", "RecipeRun",
    "ReportResult", "TrainResult", "TrainSpec", "adapt", "card", "compare", "demo", "evaluate", "inspect",
    "mapper_train", "merge", "prefetch", "push", "report", "run_recipe", "train",
]  # fmt: skip


def _expect(spec: Any, kind: type) -> None:
    if not isinstance(spec, kind):
        raise DartHubError(f"expected a {kind.__name__} (dart_hub.{kind.__name__}), got {type(spec).__name__}")


@dataclass
class AdaptResult:
    """What `adapt` did: the summary `dart-hub adapt --json` prints (a dry run: the planned
    rollouts and tokens), the output folder (None without `output` / `push_to_hub`), the work dir."""

    summary: dict[str, Any]
    output: Path | None
    work_dir: Path | None
    dry_run: bool


def adapt(spec: AdaptSpec) -> AdaptResult:
    """Adapt an expert dataset to a student (`dart-hub adapt`). Finished chunks are stored in
    the work dir: the same spec resumes after a crash and gives the same result."""
    from dart_hub.adaptation.stage import run

    _expect(spec, AdaptSpec)
    summary = run(**spec.options())
    output = summary.get("output")
    work_dir = summary.get("work_dir")
    return AdaptResult(summary=summary, output=Path(output) if output else None,
                       work_dir=Path(work_dir) if work_dir else None, dry_run=spec.dry_run)  # fmt: skip


def push(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    hub_branch: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    allow_empty: bool = False,
    with_report: bool = False,
):
    """Publish an adapt output folder as the Hub dataset `repo_id` in one commit (`dart-hub
    push`); returns a `dart_hub.publish.hub.PushResult` (repo_id, commit_url, pr_url, files...).
    `token`: else HF_TOKEN, else the stored login. `with_report`: also (re)write the HTML report
    and commit it under report/, linked from the card."""
    from dart_hub.publish.folder import read_config
    from dart_hub.publish.hub import push_folder

    folder = Path(folder)
    if not folder.is_dir():
        raise DartHubError(f"{folder} is not a folder: pass the folder written by `dart-hub adapt --output`")
    read_config(folder)  # refuses a folder that is not an adapt output
    return push_folder(folder, repo_id, private=private, branch=hub_branch, create_pr=create_pr,
                       commit_message=commit_message, token=token, allow_empty=allow_empty,
                       with_report=with_report)  # fmt: skip


@dataclass
class TrainResult:
    """What `train` did: training_summary.json's content (a dry run: the plan; `push_only`: the
    push result), the output folder and the chosen model's folder (None for a dry run)."""

    summary: dict[str, Any] | None
    output: Path | None
    model_path: Path | None


def train(spec: TrainSpec, *, sft: dict[str, Any] | None = None, as_json: bool | None = None) -> TrainResult:
    """Fine-tune a student (`dart-hub train`). `sft`: extra trl.SFTConfig keys (between the
    --config YAML and the spec's fields). `as_json` is the command line's output mode (a dry run
    prints its plan); from Python leave it None: nothing is printed on stdout."""
    from dart_hub.training.stage import run

    _expect(spec, TrainSpec)
    options = spec.options()
    if as_json is not None:
        options["as_json"] = as_json
    summary = run(sft=sft, **options)
    model_path = (summary or {}).get("model_path") if not spec.dry_run else None
    output = spec.output or ((summary or {}).get("request") or {}).get("output")
    return TrainResult(summary=summary, output=Path(output) if output else None,
                       model_path=Path(model_path) if model_path else None)  # fmt: skip


@dataclass
class EvalResult:
    """What `evaluate` wrote: results.json's content (`results`), the benchmarks asked for, the
    output folder, and the full `dart_hub.evaluation.run.EvalReport`."""

    results: dict[str, Any]
    benchmarks: list[str]
    output: Path
    report: Any = field(repr=False)

    @property
    def average(self) -> float | None:
        return self.results.get("average")


def evaluate(spec: EvalSpec) -> EvalResult:
    """Evaluate a model on the math benchmarks (`dart-hub eval`); a rerun resumes."""
    from dart_hub.evaluation.benchmarks import parse_benchmark_list
    from dart_hub.evaluation.stage import run

    _expect(spec, EvalSpec)
    report = run(**spec.options())
    return EvalResult(results=report.data, benchmarks=parse_benchmark_list(spec.benchmarks), output=Path(report.output_dir), report=report)


@dataclass
class Comparison:
    """`compare`'s table: `kind` "runs" (eval folders side by side) or "grid" (the paper's
    tables from `dart-hub run` folders), the table as data, and as text in `fmt`."""

    kind: str
    table: dict[str, Any]
    text: str


def compare(
    runs: Sequence[str | Path],
    *,
    table: int | None = None,
    baseline: str | None = None,
    labels: dict[str, str] | None = None,
    fmt: str = "markdown",
) -> Comparison:
    """Eval folders side by side with deltas against the first (or `baseline`), or `dart-hub run`
    folders laid out as the paper's tables (`table` 1, 3 or 5) - as `dart-hub compare`."""
    from dart_hub.evaluation.report import (
        FORMATS,
        RESULTS_FILE,
        compare_runs,
        grid_table,
        load_grid_runs,
        load_runs,
        match_directory,
        render_comparison,
        render_grid,
    )

    if fmt not in FORMATS:
        raise DartHubError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    if table is not None and int(table) not in (1, 3, 5):
        raise DartHubError(f"table {table}: the paper's tables are 1, 3 and 5")
    directories = [str(d) for d in runs]
    if not directories:
        raise DartHubError("compare needs at least one eval or run folder")
    if not all((Path(d) / RESULTS_FILE).is_file() for d in directories):
        if baseline or labels:
            raise DartHubError("--baseline / --label are for eval folders; the grid takes each student's No-Tuning run as the baseline")
        grid = grid_table(load_grid_runs(directories), int(table) if table else None)
        return Comparison(kind="grid", table=grid, text=render_grid(grid, fmt))
    if table:
        raise DartHubError("--table lays out `dart-hub run` folders; these are eval folders")
    loaded = load_runs(directories, dict(labels or {}))
    index = 0 if baseline is None else match_directory(baseline, [r.directory for r in loaded], "--baseline")
    result = compare_runs(loaded, baseline=index)
    return Comparison(kind="runs", table=result, text=render_comparison(result, fmt))


@dataclass
class RecipeRun:
    """What `run_recipe` did per recipe: its run folder, the stages it ran or skipped, and the
    run summary (OUTPUT/run-summary.json's content)."""

    recipe: Path
    output: Path
    stages: list[str]
    summary: dict[str, Any]


def run_recipe(
    path: str | Path | Sequence[str | Path],
    *,
    only: Sequence[str] = (),
    overrides: Sequence[str] = (),
    shard: str | None = None,
    force: bool = False,
    quiet: bool = False,
) -> list[RecipeRun]:
    """Run YAML recipes (`dart-hub run`): files, folders or glob patterns; stages already done
    with the same settings are skipped. `overrides`: "section.key=value" as `--set`."""
    from dart_hub.recipe_runner import plan_runs
    from dart_hub.recipe_runner import run_recipe as run_one

    paths = [path] if isinstance(path, str | Path) else list(path)
    out = []
    for recipe, stages in plan_runs([str(p) for p in paths], tuple(only), tuple(overrides), shard):
        state = run_one(recipe, stages, quiet, shard, force)
        out.append(RecipeRun(recipe=recipe.path, output=recipe.output, stages=stages, summary=state.data))
    return out


def merge(shards_dir: str | Path, output: str | Path, *, allow_missing: bool = False) -> MergeResult:
    """Combine the outputs of `adapt --shard I/N` (the shard folders in `shards_dir`) into one
    Hub-ready folder `output` (`dart-hub merge`); returns a `MergeResult`
    (summary, output, shards read, `engine_by_shard` when they ran on different engines).
    Shards of different runs are refused; missing shards are an error unless `allow_missing`."""
    from dart_hub.shards import merge_shards

    return merge_shards(Path(shards_dir), Path(output), allow_missing=allow_missing)


def card(folder: str | Path, *, check: bool = False) -> CardResult:
    """(Re)render the dataset card (README.md) and figure of an adapt output folder from the
    folder itself (`dart-hub card`); returns a `CardResult`. With
    `check` nothing is written and `result.stale` lists the parts that are out of date."""
    from dart_hub.publish.rerender import rerender_card

    return rerender_card(Path(folder), check=check)


def inspect(spec: InspectSpec, *, progress_bars: bool = True) -> Inspection:
    """A dataset as DART will see it (`dart-hub inspect`): returns a
    `Inspection` with the loaded source (problems, skipped rows with their
    reasons), each problem's steps and the summary; `.records()` gives the JSON lines of
    `dart-hub inspect --json`. `progress_bars` False: no `datasets` download bars."""
    from dart_hub.inspection import inspect_source

    _expect(spec, InspectSpec)
    return inspect_source(spec, progress_bars=progress_bars)


def mapper_train(spec: MapperTrainSpec) -> MapperTrainResult:
    """Train the rewriting mapper of `adapt --method mapper` with GRPO (`dart-hub mapper
    train`; our design, docs/mapper.md). Returns a
    `MapperTrainResult` (summary, final, run_file); the same spec
    resumes from the last checkpoint in `spec.output`."""
    from dart_hub.methods.mapper.stage import run

    _expect(spec, MapperTrainSpec)
    return run(spec)


def demo(spec: DemoSpec, *, log: Callable[[str], None] | None = None) -> DemoResult:
    """DART end to end on the bundled toy world (`dart-hub demo`): adapt the toy expert set for
    the toy student (and with `spec.methods` DAIL / the mapper), with `spec.with_train` train and
    grade every arm. Returns a `DemoResult`: `data` (what `--json` prints) and `text` (the
    report). `log`: the training's progress lines [default: stderr, none with `spec.quiet`]."""
    from dart_hub.toy.demo import run_demo

    _expect(spec, DemoSpec)
    return run_demo(spec, log=log)


def report(paths: str | Path | Sequence[str | Path], *, output: str | Path | None = None) -> ReportResult:
    """Write the self-contained HTML report (`dart-hub report`) of one adapt output folder
    (default FOLDER/report) or of run / eval / train folders (default ./dart-hub-report);
    returns a `ReportResult` (index, bytes, files)."""
    from dart_hub.report.build import write_report

    return write_report([paths] if isinstance(paths, str | Path) else list(paths), output)


def prefetch(
    recipe_path: str | Path | Sequence[str | Path],
    *,
    overrides: Sequence[str] = (),
    with_eval: bool = True,
    on_fetch: Callable[[Fetched], None] | None = None,
) -> list[Fetched]:
    """Download what recipes need (student model, source dataset, with `with_eval` the eval
    benchmarks) into the Hugging Face cache once (`dart-hub prefetch`); returns a list of
    `Fetched` (recipe, kind, name, where), `on_fetch` called with each."""
    from dart_hub.prefetch import prefetch_recipes

    paths = [recipe_path] if isinstance(recipe_path, str | Path) else list(recipe_path)
    return prefetch_recipes(paths, overrides, with_eval=with_eval, on_fetch=on_fetch)
