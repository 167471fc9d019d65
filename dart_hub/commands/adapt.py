"""`dart-hub adapt`: the DART algorithm from the command line."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import click

from dart_hub import __version__
from dart_hub.adapt.cut import (
    DEFAULT_EPSILON,
    DEFAULT_MIN_FOLLOW,
    DEFAULT_PEAK,
    PEAK_ALIASES,
    PEAK_RULES,
    STRATEGIES,
)
from dart_hub.adapt.search import DEFAULT_COARSE, DEFAULT_FIRST_ROUND, DEFAULT_HEAD, SEARCHES
from dart_hub.commands.options import (
    engine_for,
    engine_options,
    library_progress_bars,
    source_options,
    source_spec,
)
from dart_hub.commands.push import preflight, push_after_adapt, push_options
from dart_hub.config import CLEANING, KEEP_RULES, AdaptConfig
from dart_hub.errors import DartHubError
from dart_hub.methods import METHODS
from dart_hub.repetition import DEFAULT_MAX_REPETITION, DEFAULT_NGRAM
from dart_hub.shards import Shard

HELP = f"""Adapt an expert reasoning dataset to a student model with DART (or DAIL: --method dail).

\b
For every expert step s_t the student continues from s_0..s_t N_SIM times; f_t is the share
of rollouts whose final answer is equivalent to the gold (math-verify). The expert trace is
cut at the imitation gap and the student writes the rest itself; only continuations whose
final answer matches the expert's and that are not repetitive are kept.

\b
Strategies (--strategy):
  full    gap detection + exploration (N_EXPLORE samples from the kept prefix) [default]
  gap     cut at the gap, continue with a successful simulation rollout (no extra search)
  first   cut at the first step with any successful rollout (Adaptation-First)
  static  the expert traces unchanged (baseline; nothing is generated)

\b
Answer-revealing steps: a prefix whose steps contain a \\boxed{{X}} (or \\fbox{{X}}) with X
equivalent to the gold is not probed (the student would just restate it); its score is null
in the `steps` config and it counts for neither the peak nor the gap. An answer stated without
a box is probed like any other step.

\b
Cut rules: peak = the first local maximum of f_t followed by a significant drop (--peak
local, default) or the highest f_t, earliest on ties (--peak global); gap = first t after the
peak with f_t < f_peak - EPSILON (default {DEFAULT_EPSILON}: with 4 rollouts a drop must lose
two of them). Steps s_0..s_(gap-1) are kept, so the first step is never cut. No significant
drop: the expert trace is kept unchanged only if f at the last probed prefix is at least
MIN_FOLLOW (default {DEFAULT_MIN_FOLLOW}: the student reliably follows the whole trace);
otherwise (weak_follow) the student continues from its best prefix s_0..s_peak and outcome
consistency decides, so weak students never fall back to the Static trace unchecked. All
f_t = 0 (or the first step already reveals the answer): full lets the student solve from the
question alone; gap/first discard the example.

\b
Kept continuation: it must reach an answer equivalent to the gold and have finished on its
own (a continuation cut off by the token budget is never kept); with --cleaning cleaned
(default) it must not be repetitive (ratio <= MAX_REPETITION) and --keep one takes the lowest
repetition ratio, then fewest tokens, then lowest sample index; --cleaning raw (paper Table 5)
drops the repetition filter and preference and keeps the first qualifying sample. --keep all
keeps every qualifying continuation as its own row.

\b
Simulation results are cached by what decides them (student, engine, data, prompts,
simulation settings, seed) in the probe cache: another --strategy, --epsilon, --peak or
exploration setting on the same inputs reuses them instead of probing again.

\b
Probing (--probe): scan probes every prefix with N_SIM rollouts. adaptive probes
PROBE_COARSE evenly spaced prefixes (first and last included), then binary-searches between
the last prefix still near the running maximum and the first one clearly below it (for
--strategy first: the first success), and stops sampling a prefix once its remaining rollouts
cannot change which side of the threshold it is on. Rollout j of prefix t has the same seed in
both modes, so adaptive draws a subset of the scan's rollouts; when f is monotone on each side
of the cut it finds the scan's cut exactly (docs/performance.md measures how often otherwise).
The coarse round also probes the first prefixes t = 0..PROBE_HEAD, where a trace's feasible
start (and so the peak) usually is. At most N_SIM x (coarse and head points + ceil(log2(widest
interval between them))) rollouts per problem.

\b
--method dail (DAIL, Mendes et al. 2026): the student is shown each expert solution as
privileged context and samples DAIL_SAMPLES solutions of its own; the first one that reaches an
answer equivalent to the gold, finished and is not repetitive is kept. Rows carry the plain,
privileged and negative ("answer-aware cheater") contexts for `dart-hub train --objective
dail`. The DART options above do not apply to it; --engine, --chunk-size, --seed,
--max-repetition and the source options do.

\b
--method mapper (our design, after "Learning to Adapt SFT Data for Better Reasoning
Generalization"; not a reproduction: docs/mapper.md): a mapper model (--mapper: one trained by
`dart-hub mapper train`; default the student itself, the no-RL baseline) rewrites each expert
solution MAPPER_SAMPLES times; every rewrite is scored with the mapper rewards (correctness
gate, the student's likelihood, anti-cheating detectors) and the best one that reaches the gold
answer, finished and was not flagged is kept. None: drop the problem or keep the original
(--mapper-fallback), with the reason.

\b
Finished chunks are stored in the work dir; the same command resumes after a crash or kill
and gives the same result. Defaults are the paper's (Appendix A.2/A.3).

\b
Examples:
  dart-hub adapt --student Qwen/Qwen2.5-1.5B-Instruct --dataset limo --output out/limo-1.5b
  dart-hub adapt --student ./my-model --dataset ./my.jsonl --engine transformers \\
                 --strategy gap --n-sim 4 --epsilon 0.3 --limit 20 --output out/x
"""


class ProgressReporter:
    """Progress over problems, with rollouts/s, tokens/s and ETA (off with --quiet).

    On a terminal: a bar, redrawn twice a second. Anywhere else (a log file, Slurm's output,
    a pipe): one plain line every `every` seconds and one at the end, so a multi-hour job shows
    where it is without filling its log.
    """

    def __init__(self, total: int, enabled: bool, every: float = 60.0, stream=None):
        self.stream = stream or sys.stderr
        self.total = total
        self.started = time.monotonic()
        self.sequences = 0
        self.tokens = 0
        self.done = 0
        self.resumed = 0
        self.every = every
        self.enabled = enabled
        self.terminal = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.progress = None
        if self.terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]adapt[/bold]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("problems"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                refresh_per_second=2,
            )
            self.task = self.progress.add_task("adapt", total=total, rate="")

    def __enter__(self):
        if self.progress is not None:
            self.progress.__enter__()
        elif self.enabled:
            self._thread = threading.Thread(target=self._tick, name="dart-hub-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)
        elif self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        """adapt: 120/817 problems (15%), 52,310 rollouts (88.2/s), 9.1M tokens (15,420/s), ETA 2h11m"""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        fresh = self.done - self.resumed
        left = self.total - self.done
        eta = "?" if fresh <= 0 else _duration(left * elapsed / fresh)
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        tokens = f", {self.tokens:,} tokens ({self.tokens / elapsed:,.0f}/s)" if self.tokens else ""
        return (
            f"adapt: {self.done}/{self.total} problems{share}, {self.sequences:,} rollouts "
            f"({self.sequences / elapsed:.1f}/s){tokens}, elapsed {_duration(elapsed)}, ETA {eta}"
        )

    def sequences_done(self, count: int) -> None:
        self.sequences += count
        if self.progress is not None:
            rate = self.sequences / max(time.monotonic() - self.started, 1e-9)
            self.progress.update(self.task, rate=f"{self.sequences} rollouts ({rate:.1f}/s)")

    def tokens_done(self, count: int) -> None:
        self.tokens += count

    def problems_done(self, count: int, resumed: bool) -> None:
        self.done += count
        if resumed:
            self.resumed += count
        if self.progress is not None:
            self.progress.advance(self.task, count)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@click.command(help=HELP, context_settings={"max_content_width": 100})
@click.option("--student", required=True, help="Student model: Hub id or local folder.")
@click.option("--dataset", required=True, help="Preset (limo, math-qwq-32b), Hub dataset id, or local .jsonl/.json/.parquet file or folder.")
@source_options
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N valid problems.")
@click.option("--shard", default=None, metavar="I/N", help="Process only shard I of N (0-based; problems split by their stable id). Output goes to OUTPUT/shard-0000I-of-0000N; combine with `dart-hub merge`.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="Write the adapted dataset (parquet, Hub-ready layout) to this folder.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Where finished chunks are stored for resume [default: ~/.cache/dart-hub/work/<fingerprint>, or $DART_HUB_CACHE/work/...].")
@click.option("--probe-cache", type=click.Path(file_okay=False, path_type=Path), default=None, help="Where simulation results are cached for reuse by runs with the same simulation settings [default: ~/.cache/dart-hub/probes, or $DART_HUB_CACHE/probes].")
@click.option("--method", type=click.Choice(METHODS), default="dart", show_default=True, help="Adaptation method: dart (probe, cut at the imitation gap, explore), dail (the student rewrites each expert solution from a privileged view; see DAIL options) or mapper (a mapper model rewrites them, best-rewarded verified rewrite kept; see mapper options).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="full", show_default=True, help="Adaptation strategy (see above).")
@click.option("--n-sim", type=click.IntRange(min=1), default=4, show_default=True, help="Simulation rollouts per expert step.")
@click.option("--sim-temperature", type=float, default=0.1, show_default=True, help="Sampling temperature of simulation rollouts.")
@click.option("--sim-max-tokens", type=click.IntRange(min=1), default=4000, show_default=True, help="Max new tokens of a simulation rollout.")
@click.option("--probe", type=click.Choice(SEARCHES), default="scan", show_default=True, help="Which prefixes get simulation rollouts: scan = every prefix, N_SIM each (the paper); adaptive = coarse prefixes, then binary search towards the cut, with sequential stopping (see above).")
@click.option("--probe-coarse", type=click.IntRange(min=2), default=DEFAULT_COARSE, show_default=True, help="adaptive: evenly spaced prefixes probed first (first and last included).")
@click.option("--probe-head", type=click.IntRange(min=0), default=DEFAULT_HEAD, show_default=True, help="adaptive: the first prefixes t = 0..PROBE_HEAD are always probed in the coarse round (a short feasible start would fall between evenly spaced points).")
@click.option("--probe-round", type=click.IntRange(min=1), default=DEFAULT_FIRST_ROUND, show_default=True, help="adaptive: rollouts a prefix gets first; the rest of N_SIM only while they could change its side of the threshold.")
@click.option("--epsilon", type=float, default=DEFAULT_EPSILON, show_default=True, help="Significant drop of f below the peak that marks the gap.")
@click.option("--peak", type=click.Choice([*PEAK_RULES, *PEAK_ALIASES]), default=DEFAULT_PEAK, show_default=True, help="Which maximum of f is the peak (see above; 'first' is the old name of 'local').")
@click.option("--min-follow", type=click.FloatRange(0, 1), default=DEFAULT_MIN_FOLLOW, show_default=True, help="No drop keeps the expert trace unchanged only if f at the last probed prefix is at least this.")
@click.option("--n-explore", type=click.IntRange(min=1), default=8, show_default=True, help="Exploration samples from the kept prefix (strategy full).")
@click.option("--explore-temperature", type=float, default=0.7, show_default=True, help="Sampling temperature of exploration.")
@click.option("--explore-max-tokens", type=click.IntRange(min=1), default=2000, show_default=True, help="Max new tokens of an exploration sample.")
@click.option("--max-repetition", type=click.FloatRange(0, 1), default=DEFAULT_MAX_REPETITION, show_default=True, help="Drop continuations whose repeated word n-gram share is above this.")
@click.option("--repetition-ngram", type=click.IntRange(min=1), default=DEFAULT_NGRAM, show_default=True, help="n of the word n-grams used for the repetition ratio.")
@click.option("--keep", type=click.Choice(KEEP_RULES), default="one", show_default=True, help="Keep one continuation per example or all qualifying ones.")
@click.option("--cleaning", type=click.Choice(CLEANING), default="cleaned", show_default=True, help="cleaned: drop repetitive continuations and prefer the least repetitive (paper Appendix B); raw: neither (paper Table 5, Adaptation-Raw).")
@click.option("--min-step-chars", type=click.IntRange(min=1), default=None, help="Merge solution fragments shorter than this into a neighbouring step [default: dart_hub.steps default].")
@click.option("--chunk-size", type=click.IntRange(min=1), default=16, show_default=True, help="Problems per stored chunk (the unit a resume keeps); with --scheduler chunks also per engine call.")
@click.option("--scheduler", type=click.Choice(["stream", "chunks"]), default="stream", show_default=True, help="DART: stream = every problem goes probe -> cut -> explore at its own pace and requests are sent as soon as they exist (no engine idles at a chunk boundary); chunks = two engine calls per chunk (the earlier runner). Both give the same records.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed; every request's seed derives from it and the request itself.")
@click.option("--prompts", "prompts_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="YAML file replacing prompt templates (keys: simulation, exploration, solve, system, sft_system).")
@click.option("--dail-samples", type=click.IntRange(min=1), default=32, show_default=True, help="DAIL: samples per problem from the privileged context.")
@click.option("--dail-temperature", type=click.FloatRange(min=0), default=0.6, show_default=True, help="DAIL: sampling temperature.")
@click.option("--dail-top-p", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True, help="DAIL: top-p.")
@click.option("--dail-max-tokens", type=click.IntRange(min=1), default=2048, show_default=True, help="DAIL: max new tokens per sample.")
@click.option("--dail-tau", type=click.FloatRange(0, 1), default=1.0, show_default=True, help="DAIL: mixed-policy threshold; 1 = every token from the privileged context (the authors' setting, any engine); below 1 the proposer's tokens are accepted when the validator gives them at least this probability (--engine transformers only).")
@click.option("--dail-proposer", type=click.Choice(["plain", "privileged"]), default="plain", show_default=True, help="DAIL mixed policy: which context proposes tokens (the other validates).")
@click.option("--dail-max-hints", type=click.IntRange(min=0), default=12, show_default=True, help="DAIL: intermediate quantities in the negative context's hint.")
@click.option("--method-prompts", type=click.Path(dir_okay=False, path_type=Path), default=None, help="DAIL: YAML replacing its prompt templates (keys: privileged, negative). mapper: keys rewrite, system.")
@click.option("--mapper", "mapper_model", default=None, help="mapper: the rewriting model (Hub id or folder, e.g. runs/mapper/final) [default: the student: the mapper prompt without RL].")
@click.option("--mapper-samples", type=click.IntRange(min=1), default=4, show_default=True, help="mapper: rewrites sampled per problem.")
@click.option("--mapper-temperature", type=click.FloatRange(min=0), default=0.7, show_default=True, help="mapper: sampling temperature.")
@click.option("--mapper-top-p", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True, help="mapper: top-p.")
@click.option("--mapper-max-tokens", type=click.IntRange(min=1), default=2048, show_default=True, help="mapper: max new tokens per rewrite.")
@click.option("--mapper-fallback", type=click.Choice(["drop", "original"]), default="drop", show_default=True, help="mapper: when no rewrite qualifies, drop the problem or keep the original solution (reason recorded either way).")
@click.option("--mapper-rewards", default=None, metavar="NAME=W,...", help="mapper: reward weights (correctness, alignment, too_short, answer_first, copy, repetition; 0 switches one off) [default: all 1].")
@click.option("--mapper-reward-settings", default=None, metavar="KEY=VALUE,...", help="mapper: reward parameters, e.g. relative=true,align_floor=-10,min_length_ratio=0.5,max_copy=0.6 (docs/mapper.md).")
@click.option("--scorer", type=click.Choice(["transformers", "vllm"]), default="transformers", show_default=True, help="mapper: what computes the student's likelihood: transformers (a forward pass on --scorer-device, dtype --dtype) or vllm (vLLM prompt log-probabilities; needs vLLM; docs/mapper.md).")
@click.option("--scorer-device", default=None, help="mapper: device of the scorer. transformers: any torch device [default: cuda when available, else cpu]. vllm: vLLM picks its platform; cuda:N starts its engine on GPU N.")
@click.option("--scorer-gpu-memory-utilization", type=click.FloatRange(0, 1, min_open=True), default=None, help="mapper, --scorer vllm: share of its GPU the scorer's vLLM may take [default: 0.9]; lower it (and --gpu-memory-utilization) when it shares a GPU with a vLLM mapper engine.")
@engine_options
@click.option("--student-revision", default=None, help="Hub revision of the student model.")
@click.option("--tokenizer", default=None, help="engine openai: Hub id or folder of the served model's tokenizer, to skip problems too long for the server's context (max_model_len from /v1/models, or --max-model-len) before sending them [default: the student id; a student id with no tokenizer only skips the check, with a warning].")
@click.option("--answer-timeout", type=float, default=5.0, show_default=True, help="Seconds before an answer comparison is killed and counted as not equal.")
@click.option("--dry-run", is_flag=True, help="Run the admission checks of the real run (context length, gold answers), print which problems it would skip and how many rollouts and (upper-bound) tokens the rest need, and exit.")
@click.option("--admission/--no-admission", default=True, hidden=True, help="--dry-run: run the admission checks (they load the student's tokenizer); `dart-hub run --dry-run` plans offline without them.")
@click.option("--tokens-per-second", type=click.FloatRange(min=0, min_open=True), default=None, metavar="X", help="With --dry-run: your measured generation throughput per GPU (new tokens/s, all sequences together); the dry run adds the GPU-hours of its upper-bound token count.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or progress lines.")
@click.option("--progress-every", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True, metavar="SECONDS", help="When stderr is not a terminal (a log file, Slurm): one progress line (problems done/total, rollouts/s, tokens/s, ETA) every SECONDS.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@push_options
def command(**options) -> None:
    run(**options)


def run(**o) -> dict:
    """Run `adapt` with the command's options (as click passes them); returns the summary."""
    if o.get("tokens_per_second") and not o["dry_run"]:
        raise DartHubError("--tokens-per-second goes with --dry-run (it prices the planned run)")
    with library_progress_bars(not o["quiet"] and not o["as_json"]):
        return _run(**o)


def _run(**o) -> dict:
    from dart_hub.adapt.pipeline import run_chunks, summarize
    from dart_hub.prompts import load_prompts
    from dart_hub.sources import load_source
    from dart_hub.store import (
        ProbeStore,
        WorkDir,
        default_probe_cache,
        default_work_root,
        fingerprint,
    )

    if o.get("engine") == "openai" and not o.get("base_url"):  # before admission asks the server
        raise DartHubError("--engine openai needs --base-url (e.g. http://localhost:8000/v1)")
    config = AdaptConfig(
        strategy=o["strategy"],
        n_sim=o["n_sim"],
        sim_temperature=o["sim_temperature"],
        sim_max_tokens=o["sim_max_tokens"],
        probe=o["probe"],
        probe_coarse=o["probe_coarse"],
        probe_round=o["probe_round"],
        probe_head=o["probe_head"],
        epsilon=o["epsilon"],
        peak=o["peak"],
        min_follow=o["min_follow"],
        n_explore=o["n_explore"],
        explore_temperature=o["explore_temperature"],
        explore_max_tokens=o["explore_max_tokens"],
        max_repetition=o["max_repetition"],
        repetition_ngram=o["repetition_ngram"],
        keep=o["keep"],
        cleaning=o["cleaning"],
        min_step_chars=o["min_step_chars"],
        chunk_size=o["chunk_size"],
        seed=o["seed"],
    )
    prompts = load_prompts(o["prompts_file"])
    spec = source_spec(o["dataset"], o, o["limit"])
    shard = Shard.parse(o["shard"]) if o["shard"] else None
    source = load_source(spec)
    if not source.problems:
        raise DartHubError(f"no usable problems in {o['dataset']} ({len(source.skipped)} rows skipped); run `dart-hub inspect {o['dataset']}` to see why")
    problems = shard.select(source.problems) if shard else source.problems

    method = build_method(o, config, prompts)
    from dart_hub.answers import AnswerChecker

    if method.name == "mapper" and method.config.mapper:  # the mapper generates; the student only scores
        engine = engine_for(o, method.config.mapper, None)
    else:
        engine = engine_for(o, o["student"], o["student_revision"])
    if o["dry_run"]:  # the real run's admission, then the price of what it admits
        if o.get("admission", True):
            problems, admitted = _admit(problems, config, prompts, o, source, engine)
        else:  # offline planning (`dart-hub run --dry-run`): nothing loaded, nothing skipped
            from dart_hub.adapt.admission import Admission

            admitted = Admission(list(problems))
        with AnswerChecker(timeout=o["answer_timeout"]) as checker:
            cost = method.plan(problems, checker)
        cost["skipped_rows"] = len(source.skipped)
        cost["skipped_before_generation"] = admitted.counts()
        cost["would_skip"] = [{"row_index": row.row_index, "reason": row.reason, "detail": row.detail} for row in admitted.skipped]
        if o.get("tokens_per_second"):
            # every rollout at its max_tokens: an upper bound, like new_tokens_max
            cost["tokens_per_second"] = o["tokens_per_second"]
            cost["gpu_hours_max"] = round(cost["new_tokens_max"] / o["tokens_per_second"] / 3600, 2)
        _print(cost, o["as_json"], title="dry run: what this run needs")
        return cost
    preflight(o)  # --push-to-hub: repo id and token checked before any generation
    problems, admitted = _admit(problems, config, prompts, o, source, engine)
    inputs = {
        "source": source.fingerprint(),
        "student": o["student"],
        "student_revision": o["student_revision"],
        "engine": engine.name,
        "dtype": o["dtype"],
        "config": method.settings(),
        "prompts": prompts.fingerprint(),
    }
    if method.name != "dart":  # DART's fingerprints stay what they were before methods existed
        inputs["method"] = method.name
    if method.name == "mapper":
        inputs["engine_model"] = engine.model_id
    run_key = fingerprint(inputs)
    work_dir = WorkDir(o["work_dir"] or default_work_root() / run_key, run_key, inputs)
    probe_inputs = {key: inputs[key] for key in ("source", "student", "student_revision", "engine", "dtype", "prompts")}
    probe_inputs["simulation"] = config.simulation_settings()
    probes = method.name == "dart" and config.probes
    probe_store = ProbeStore(o["probe_cache"] or default_probe_cache(), fingerprint(probe_inputs), probe_inputs) if probes else None
    chunk_size = method.config.chunk_size

    started = time.monotonic()
    show_progress = not o["quiet"] and not o["as_json"]
    given_up: list = []  # problems the server refused (stored, so a resume does not retry them)
    with AnswerChecker(timeout=o["answer_timeout"]) as checker, ProgressReporter(len(problems), show_progress, o.get("progress_every") or 60.0) as reporter:
        try:
            if method.name == "dart" and o.get("scheduler", "stream") == "stream":
                from dart_hub.adapt.stream import run_streaming

                examples = run_streaming(engine, problems, config, prompts, checker, work_dir, reporter, probe_store, given_up)
            else:
                examples = run_chunks(
                    lambda chunk, rep: method.adapt_chunk(engine, chunk, checker, rep, probe_store),
                    problems, chunk_size, work_dir, reporter, given_up,
                )  # fmt: skip
            engine_info = engine.describe()  # before close: vLLM reports its prefix-cache hit rate here
        finally:
            engine.close()
            if hasattr(method, "close"):
                method.close()  # the mapper's scorer (a vLLM scorer runs an engine process)
    source.skipped.extend(given_up)
    summary = {"method": method.name, **summarize(examples, config)}
    if engine_info.get("prefix_cache_hit_rate") is not None:
        summary["prefix_cache_hit_rate"] = engine_info["prefix_cache_hit_rate"]
    summary["skipped_rows"] = len(source.skipped)
    if probe_store is not None:
        summary["probe_chunks_reused"] = probe_store.reused
        summary["probe_problems_reused"] = probe_store.reused_problems
    summary["skipped_before_generation"] = admitted.counts()
    if given_up:
        summary["skipped_during_generation"] = dict(Counter(row.reason for row in given_up))
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["work_dir"] = str(work_dir.path)

    output_root = o["output"]
    if output_root is None and o.get("push_to_hub"):
        output_root = work_dir.path / "hub-folder"  # kept: a failed push can be retried with `dart-hub push`
    if output_root is not None:
        from dart_hub.publish.folder import write_folder

        run_config = {
            "dart_hub_version": __version__,
            "fingerprint": run_key,
            "student": o["student"],
            "student_revision": o["student_revision"],
            "engine": engine_info,
            "source": source_record(source),
            "method": method.name,
            "objective": method.objective,
            method_section(method.name): published_settings(method),
            "prompts": prompts.to_dict(),
            "summary": summary,
            "shard": {"index": shard.index, "count": shard.count} if shard else None,
        }
        output = output_root / shard.name if shard else output_root
        write_folder(output, examples, run_config, {"question": source.question_column, "solution": source.solution_column, "answer": source.answer_column}, prompts.sft_system)
        summary["output"] = str(output)
        if o.get("push_to_hub"):
            summary.update(push_after_adapt(output, o))
    _print(summary, o["as_json"], title=f"adapted {o['dataset']} for {o['student']}")
    return summary


def method_section(name: str) -> str:
    """The run config's key for a method's settings ("adapt" for DART, as before methods)."""
    return "adapt" if name == "dart" else name


def published_settings(method) -> dict:
    """The method's settings as the folder shows them: a local mapper model is named ./FOLDER
    (like a local student: nothing published shows the user's file system)."""
    settings = method.settings()
    if method.name == "mapper" and settings.get("mapper"):
        from dart_hub.publish.cards import is_local_model, model_argument

        if is_local_model(settings["mapper"]):
            settings = {**settings, "mapper": model_argument(settings["mapper"])}
    return settings


def build_method(o: dict, config: AdaptConfig, prompts):
    """The adaptation method the options ask for (dart_hub.methods)."""
    if o.get("method", "dart") == "dart":
        from dart_hub.methods.dart import Dart

        return Dart(config, prompts)
    if o["method"] == "mapper":
        return build_mapper(o, prompts)
    from dart_hub.methods.dail import Dail, DailConfig, load_dail_prompts

    dail = DailConfig(
        samples=o["dail_samples"], temperature=o["dail_temperature"], top_p=o["dail_top_p"],
        max_tokens=o["dail_max_tokens"], tau=o["dail_tau"], proposer=o["dail_proposer"], max_hints=o["dail_max_hints"],
        max_repetition=o["max_repetition"], repetition_ngram=o["repetition_ngram"],
        chunk_size=o["chunk_size"], seed=o["seed"],
    )  # fmt: skip
    return Dail(dail, prompts, load_dail_prompts(o.get("method_prompts")))


def _admit(problems, config, prompts, o, source, engine=None):
    """Admission checks (too_long, unverifiable_gold): skipped before generating, counted with the
    source's skipped rows (so in the summary and the card). With --engine openai the context
    window is the server's (/v1/models max_model_len) unless --max-model-len says."""
    from dart_hub.adapt.admission import admit

    def server_window():
        engine.check()
        return engine.max_model_len

    admitted = admit(problems, config, prompts, o, server_window if engine is not None else None)
    source.skipped.extend(admitted.skipped)
    if problems and not admitted.problems:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(admitted.counts().items()))
        raise DartHubError(f"no problem can be adapted: all {len(problems)} were skipped before generating ({counts}); run `dart-hub inspect` and see docs/reliability.md")
    return admitted.problems, admitted


def build_mapper(o: dict, prompts):
    """The mapper method; its scorer (the student's likelihood) is loaded on first use."""
    from dart_hub.methods.mapper import Mapper, MapperConfig, RewardConfig, load_mapper_prompts
    from dart_hub.methods.mapper.scorer import make_scorer, require_scorer

    rewards = RewardConfig(max_repetition=o["max_repetition"], repetition_ngram=o["repetition_ngram"])
    rewards = rewards.with_weights(o.get("mapper_rewards")).with_settings(o.get("mapper_reward_settings"))
    config = MapperConfig(
        mapper=o.get("mapper_model"), samples=o["mapper_samples"], temperature=o["mapper_temperature"],
        top_p=o["mapper_top_p"], max_tokens=o["mapper_max_tokens"], fallback=o["mapper_fallback"],
        rewards=rewards, chunk_size=o["chunk_size"], seed=o["seed"], scorer=o.get("scorer") or "transformers",
    )  # fmt: skip
    if rewards.weights.get("alignment", 0.0):
        require_scorer(config.scorer)  # vLLM missing: say so now, not after the first chunk's generation

    def scorer():
        return make_scorer(config.scorer, o["student"], device=o.get("scorer_device"), dtype=o["dtype"], system=prompts.sft_system,
                           revision=o["student_revision"], gpu_memory_utilization=o.get("scorer_gpu_memory_utilization"))  # fmt: skip

    return Mapper(config, prompts, load_mapper_prompts(o.get("method_prompts")), scorer)


def source_record(source) -> dict:
    """Where the data came from, for the run config and the card."""
    return {
        "dataset": source.spec.dataset,
        "preset": source.preset,
        "kind": source.kind,
        "repo_id": source.repo_id,
        "revision": source.revision,
        "config": source.config,
        "split": source.split,
        "license": source.license,
        "columns": {"question": source.question_column, "solution": source.solution_column, "answer": source.answer_column},
        "rows": source.num_rows,
        "skipped": source.skipped_by_reason(),
        "fingerprint": source.fingerprint(),
    }


def _print(data: dict, as_json: bool, title: str) -> None:
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    click.echo(title)
    for key, value in data.items():
        click.echo(f"  {key}: {value}")
    sys.stdout.flush()
