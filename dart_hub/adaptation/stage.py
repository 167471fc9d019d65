"""The adapt stage as one call: load the source, build the method and the engine, run the
chunks through the work dir, write the output folder (and push it)."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter

from dart_hub import __version__
from dart_hub.adaptation.rules import DEFAULT_RULES
from dart_hub.config import AdaptConfig
from dart_hub.engines.factory import engine_for
from dart_hub.errors import DartHubError
from dart_hub.progress import library_progress_bars
from dart_hub.publish.hub import preflight, push_after_adapt
from dart_hub.shards import Shard

# why a method cannot stream (`Method.flows` gives None), as `adapt` says it
CHUNKED_ONLY = {"dail": "--dail-tau below 1 decodes two contexts in lock-step on the transformers engine"}


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


def run(**o) -> dict:
    """Run `adapt` with the command's options (as click passes them); returns the summary."""
    if o.get("tokens_per_second") and not o["dry_run"]:
        raise DartHubError("--tokens-per-second goes with --dry-run (it prices the planned run)")
    with library_progress_bars(not o["quiet"] and not o.get("as_json")):
        return _run(**o)


def _run(**o) -> dict:
    from dart_hub.adaptation.pipeline import run_chunks, summarize
    from dart_hub.prompts import load_prompts
    from dart_hub.sources import load_source, source_record, source_spec
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
        rules=o.get("rules") or DEFAULT_RULES,
        peak=o["peak"],
        min_follow=o["min_follow"],
        answer_steps=o.get("answer_steps"),
        confirm=o.get("confirm"),
        all_zero=o.get("all_zero"),
        unfinished=o.get("unfinished"),
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
            from dart_hub.adaptation.admission import Admission

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
        return cost
    preflight(o)  # --push-to-hub: repo id and token checked before any generation
    problems, admitted = _admit(problems, config, prompts, o, source, engine)
    inputs = {
        "source": source.fingerprint(),
        "student": o["student"],
        "student_revision": o["student_revision"],
        "engine": engine.name,
        "dtype": o["dtype"],
        "config": getattr(method, "fingerprint_settings", method.settings)(),
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
    show_progress = not o["quiet"] and not o.get("as_json")
    given_up: list = []  # problems the server refused (stored, so a resume does not retry them)
    with AnswerChecker(timeout=o["answer_timeout"]) as checker, ProgressReporter(len(problems), show_progress, o.get("progress_every") or 60.0) as reporter:
        try:
            flows = method.flows(checker, probe_store) if o.get("scheduler", "stream") == "stream" else None
            if flows is not None:
                from dart_hub.adaptation.stream import stream

                examples = stream(engine, problems, flows, checker, work_dir, reporter, given_up)
            else:
                if o.get("scheduler", "stream") == "stream" and show_progress:
                    sys.stderr.write(f"{method.name}: runs chunk by chunk ({CHUNKED_ONLY.get(method.name, 'no streaming form')})\n")
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
    if method.name != "dart":  # the cut rules are DART's; another method ran none of them
        summary.update(rules=None, deviations=None, confirm_rollouts=None)
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
        columns = {"question": source.question_column, "solution": source.solution_column, "answer": source.answer_column}
        write_folder(output, examples, run_config, columns, prompts.sft_system, with_report=not o.get("no_report"))
        summary["output"] = str(output)
        if not o.get("no_report"):
            from dart_hub.report.render import INDEX, REPORT_DIR

            summary["report"] = str(output / REPORT_DIR / INDEX)
        if o.get("push_to_hub"):
            summary.update(push_after_adapt(output, o))
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
    from dart_hub.methods.dail import DEFAULT_MIN_STEPS, Dail, DailConfig, load_dail_prompts

    dail = DailConfig(
        samples=o["dail_samples"], temperature=o["dail_temperature"], top_p=o["dail_top_p"],
        max_tokens=o["dail_max_tokens"], tau=o["dail_tau"], proposer=o["dail_proposer"], max_hints=o["dail_max_hints"],
        max_repetition=o["max_repetition"], repetition_ngram=o["repetition_ngram"],
        filter=o.get("dail_filter") or "guarded", min_steps=o.get("dail_min_steps") or DEFAULT_MIN_STEPS,
        chunk_size=o["chunk_size"], seed=o["seed"],
    )  # fmt: skip
    return Dail(dail, prompts, load_dail_prompts(o.get("method_prompts")))


def _admit(problems, config, prompts, o, source, engine=None):
    """Admission checks (too_long, unverifiable_gold): skipped before generating, counted with the
    source's skipped rows (so in the summary and the card). With --engine openai the context
    window is the server's (/v1/models max_model_len) unless --max-model-len says."""
    from dart_hub.adaptation.admission import admit

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
    from dart_hub.methods.mapper.rewards import NEEDS_STUDENT
    from dart_hub.methods.mapper.scorer import make_scorer, require_scorer

    rewards = RewardConfig(max_repetition=o["max_repetition"], repetition_ngram=o["repetition_ngram"])
    rewards = rewards.with_weights(o.get("mapper_rewards")).with_settings(o.get("mapper_reward_settings"))
    config = MapperConfig(
        mapper=o.get("mapper_model"), samples=o["mapper_samples"], temperature=o["mapper_temperature"],
        top_p=o["mapper_top_p"], max_tokens=o["mapper_max_tokens"], fallback=o["mapper_fallback"],
        rewards=rewards, chunk_size=o["chunk_size"], seed=o["seed"], scorer=o.get("scorer") or "transformers",
    )  # fmt: skip
    if any(rewards.weights.get(name, 0.0) for name in NEEDS_STUDENT):
        require_scorer(config.scorer)  # vLLM missing: say so now, not after the first chunk's generation

    def scorer():
        return make_scorer(config.scorer, o["student"], device=o.get("scorer_device"), dtype=o["dtype"], system=prompts.sft_system,
                           revision=o["student_revision"], gpu_memory_utilization=o.get("scorer_gpu_memory_utilization"))  # fmt: skip

    return Mapper(config, prompts, load_mapper_prompts(o.get("method_prompts")), scorer)
