"""`dart-hub adapt`: the DART algorithm from the command line."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import click

from dart_hub.adaptation.cut import (
    DEFAULT_EPSILON,
    PEAK_ALIASES,
    PEAK_RULES,
    STRATEGIES,
)
from dart_hub.adaptation.rules import (
    ALL_ZERO,
    ANSWER_STEPS,
    DEFAULT_CONFIRM,
    DEFAULT_RULES,
    RULE_SETS,
    UNFINISHED,
)
from dart_hub.adaptation.search import DEFAULT_COARSE, DEFAULT_FIRST_ROUND, DEFAULT_HEAD, SEARCHES
from dart_hub.adaptation.stage import run  # noqa: F401  (the stage, for code written when it lived here; new code calls dart_hub.api)
from dart_hub.commands.options import (
    engine_options,
    source_options,
)
from dart_hub.commands.push import push_options
from dart_hub.config import CLEANING, KEEP_RULES
from dart_hub.methods import METHODS
from dart_hub.repetition import DEFAULT_MAX_REPETITION, DEFAULT_NGRAM


def _deviation_help() -> str:
    from dart_hub.adaptation.rules import DEVIATIONS, PRESETS

    robust = PRESETS["robust"]
    lines = []
    for name, (option, _active, text) in DEVIATIONS.items():
        if name == "adaptive-probing":
            continue  # not part of robust; listed with --probe below
        shown = option.replace("K", str(robust["confirm"])).replace("X", str(robust["min_follow"]))
        lines.append(textwrap.fill(f"{name} ({shown}): {text}", width=92, initial_indent="  ", subsequent_indent="    "))
    return "\n".join(lines)


DEVIATION_HELP = _deviation_help()

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
Rules (--rules): paper [default] runs Algorithm 1 of the DART paper as written: f_t for every
step (answer-stating ones included), peak = the first index of the maximum of f, gap = the
first t after the peak with f_t < f_peak - EPSILON (default {DEFAULT_EPSILON}), keep s_0..s_(gap-1);
no gap: the whole expert trace is kept. Where the paper is silent it is read literally: an
all-zero curve has no gap (the trace is kept); a continuation is judged by its final answer
only, even when the token budget cut it off. robust runs dart-hub's own rules instead, each
a deviation from Algorithm 1 that the summary and the dataset card list by name:
{DEVIATION_HELP}
Each switch can also be set on its own (--answer-steps, --peak, --confirm, --min-follow,
--all-zero, --unfinished; --probe adaptive is a deviation too); docs/method.md explains
them. Cut reasons: gap, no_drop (no gap, trace kept), weak_follow (no gap but f at the last
probed prefix < MIN_FOLLOW: the student continues from s_0..s_peak), all_zero / answer_first
(robust: nothing to follow, full solves from the question, gap/first discard).

\b
Answer-revealing steps: a step whose \\boxed{{X}} (or \\fbox{{X}}) has X equivalent to the gold
reveals the answer (`reveal_step`); with --answer-steps skip that prefix and every longer one
are not probed (null scores in the `steps` config). An answer without a box does not count.

\b
Kept continuation: it must reach an answer equivalent to the gold (and, with --unfinished
drop, have finished on its own); with --cleaning cleaned
(default) it must not be repetitive (ratio <= MAX_REPETITION) and --keep one takes the lowest
repetition ratio, then fewest tokens, then lowest sample index; --cleaning raw (paper Table 5)
drops the repetition filter and preference and keeps the first qualifying sample. --keep all
keeps every qualifying continuation as its own row.

\b
Where the cuts fall: the summary and the card give keep/T (mean and quartiles) next to the
paper's Table 6 gap positions (LIMO 0.60-0.77, Math-QwQ-32B 0.32-0.52 of the trace).

\b
Simulation results are cached by what decides them (student, engine, data, prompts,
simulation settings, seed) in the probe cache: another --strategy, --epsilon, --peak or
exploration setting on the same inputs reuses them instead of probing again (--rules and
--answer-steps / --confirm change what is probed, so they have keys of their own).

\b
Probing (--probe): scan probes every prefix with N_SIM rollouts. adaptive (deviation
adaptive-probing; needs --peak local) probes PROBE_COARSE evenly spaced prefixes (first and
last included) and the head t = 0..PROBE_HEAD, then binary-searches between the last prefix still near the
running maximum and the first one clearly below it (for --strategy first: the first
success), and stops sampling a prefix once its remaining rollouts cannot change which side of
the threshold it is on. Rollout j of prefix t has the same seed in both modes. It returns
the scan's cut exactly (tested) when the highest f before the scan's cut is first reached
within the head t = 0..PROBE_HEAD and every prefix from the cut on stays more than EPSILON
below it (the whole curve when there is no cut); elsewhere, e.g. a peak between probed
prefixes, it can differ (docs/performance.md measures how often). At most N_SIM x (coarse
and head points + ceil(log2(widest interval between them))) rollouts per problem, plus the
confirmation rollouts with --confirm.

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
and gives the same result. Defaults are the paper's (Algorithm 1, Appendix A.2/A.3) where it
gives one; EPSILON = 0.3 is ours (the paper gives no value).

\b
Examples:
  dart-hub adapt --student Qwen/Qwen2.5-1.5B-Instruct --dataset limo --output out/limo-1.5b
  dart-hub adapt --student ./my-model --dataset ./my.jsonl --engine transformers \\
                 --strategy gap --n-sim 4 --epsilon 0.3 --limit 20 --output out/x
"""


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
@click.option("--rules", type=click.Choice(RULE_SETS), default=DEFAULT_RULES, show_default=True, help="paper: Algorithm 1 as written; robust: dart-hub's additions, each a named deviation (see above). The switches below default to the chosen set's value.")
@click.option("--peak", type=click.Choice([*PEAK_RULES, *PEAK_ALIASES]), default=None, help="Which maximum of f is the peak: global = the first index of the maximum (paper), local = the best step before the first significant drop (robust; 'first' is its old name). [default: from --rules]")
@click.option("--min-follow", type=click.FloatRange(0, 1), default=None, help="No gap keeps the expert trace unchanged only if f at the last probed prefix is at least this; otherwise weak_follow. [default: from --rules: paper 0, robust 0.5]")
@click.option("--answer-steps", type=click.Choice(ANSWER_STEPS), default=None, help="probe (paper) or skip (robust) the prefixes that already state the gold answer in a \\boxed{}. [default: from --rules]")
@click.option("--confirm", type=click.IntRange(min=0), default=None, metavar="K", help=f"Draw up to K more rollouts at a candidate gap and at its peak and accept the drop only when a sequential test confirms it (docs/method.md); 0: off. [default: from --rules: paper 0, robust {DEFAULT_CONFIRM}]")
@click.option("--all-zero", type=click.Choice(ALL_ZERO), default=None, help="When no rollout from any prefix reaches the answer: trace = no gap, keep the expert trace (paper, read literally); question = the student solves from the question alone (robust). [default: from --rules]")
@click.option("--unfinished", type=click.Choice(UNFINISHED), default=None, help="keep (paper: outcome consistency alone decides) or drop (robust) continuations cut off by the token budget. [default: from --rules]")
@click.option("--n-explore", type=click.IntRange(min=1), default=8, show_default=True, help="Exploration samples from the kept prefix (strategy full).")
@click.option("--explore-temperature", type=float, default=0.7, show_default=True, help="Sampling temperature of exploration.")
@click.option("--explore-max-tokens", type=click.IntRange(min=1), default=2000, show_default=True, help="Max new tokens of an exploration sample.")
@click.option("--max-repetition", type=click.FloatRange(0, 1), default=DEFAULT_MAX_REPETITION, show_default=True, help="Drop continuations whose repeated word n-gram share is above this.")
@click.option("--repetition-ngram", type=click.IntRange(min=1), default=DEFAULT_NGRAM, show_default=True, help="n of the word n-grams used for the repetition ratio.")
@click.option("--keep", type=click.Choice(KEEP_RULES), default="one", show_default=True, help="Keep one continuation per example or all qualifying ones.")
@click.option("--cleaning", type=click.Choice(CLEANING), default="cleaned", show_default=True, help="cleaned: drop repetitive continuations and prefer the least repetitive (paper Appendix B); raw: neither (paper Table 5, Adaptation-Raw).")
@click.option("--min-step-chars", type=click.IntRange(min=1), default=None, help="Merge solution fragments shorter than this into a neighbouring step [default: dart_hub.steps default].")
@click.option("--chunk-size", type=click.IntRange(min=1), default=16, show_default=True, help="Problems per stored chunk (the unit a resume keeps); with --scheduler chunks also per engine call.")
@click.option("--scheduler", type=click.Choice(["stream", "chunks"]), default="stream", show_default=True, help="stream = every problem goes through its method at its own pace (DART: probe -> cut -> explore) and requests are sent as soon as they exist (no engine idles at a chunk boundary); chunks = the engine calls of a whole chunk at once (the earlier runner). Both give the same records. DART, DAIL and the mapper stream; DAIL with --dail-tau below 1 always runs chunk by chunk.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed; every request's seed derives from it and the request itself.")
@click.option("--prompts", "prompts_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="YAML file replacing prompt templates (keys: simulation, exploration, solve, system, sft_system).")
@click.option("--dail-samples", type=click.IntRange(min=1), default=32, show_default=True, help="DAIL: samples per problem from the privileged context.")
@click.option("--dail-temperature", type=click.FloatRange(min=0), default=0.6, show_default=True, help="DAIL: sampling temperature.")
@click.option("--dail-top-p", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True, help="DAIL: top-p.")
@click.option("--dail-max-tokens", type=click.IntRange(min=1), default=2048, show_default=True, help="DAIL: max new tokens per sample.")
@click.option("--dail-tau", type=click.FloatRange(0, 1), default=1.0, show_default=True, help="DAIL: mixed-policy threshold; 1 = every token from the privileged context (the authors' setting, any engine); below 1 the proposer's tokens are accepted when the validator gives them at least this probability (--engine transformers only).")
@click.option("--dail-proposer", type=click.Choice(["plain", "privileged"]), default="plain", show_default=True, help="DAIL mixed policy: which context proposes tokens (the other validates).")
@click.option("--dail-filter", type=click.Choice(["guarded", "paper"]), default="guarded", show_default=True, help="DAIL: which samples qualify. paper: the DAIL paper's filter (correct answer, finished, not repetitive); guarded (a dart-hub addition, not the paper's): also at least --dail-min-steps reasoning steps besides the statement of the answer, so answer-only rewrites are never kept.")
@click.option("--dail-min-steps", type=click.IntRange(min=1), default=2, show_default=True, help="DAIL with --dail-filter guarded: fewest reasoning steps (sentences or lines that do not state the answer) a kept sample has.")
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
@click.option("--no-report", is_flag=True, help="Do not write the HTML report (OUTPUT/report/index.html; see `dart-hub report --help`).")
@push_options
def command(as_json: bool, **options) -> None:
    from dart_hub.api import adapt
    from dart_hub.specs import AdaptSpec

    options["quiet"] = options["quiet"] or as_json  # --json: no progress bars either
    spec = AdaptSpec(**options)
    result = adapt(spec)
    title = "dry run: what this run needs" if spec.dry_run else f"adapted {spec.dataset} for {spec.student}"
    _print(result.summary, as_json, title=title)


def _print(data: dict, as_json: bool, title: str) -> None:
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    click.echo(title)
    for key, value in data.items():
        click.echo(f"  {key}: {value}")
    sys.stdout.flush()
