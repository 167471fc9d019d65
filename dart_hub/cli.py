"""The `dart-hub` command line: a thin click group; each command lives in dart_hub/commands/."""

from __future__ import annotations

import importlib
import sys

import click

from dart_hub import __version__
from dart_hub.errors import DartHubError

# name -> module under dart_hub.commands exposing a click command called `command`.
# Imported lazily so `dart-hub --help` stays fast (no torch import).
COMMANDS = {
    "demo": "Run DART end to end on the bundled toy world (offline, CPU, minutes).",
    "inspect": "Show problems of a dataset, split into steps, with their gold answers.",
    "adapt": "Adapt an expert dataset to a student model (DART by default; --method dail or mapper).",
    "run": "Run a YAML recipe: adapt, push, train and evaluate as it says, resuming finished stages.",
    "prefetch": "Download a recipe's student model, source dataset and benchmarks into the Hub cache once (before Slurm arrays).",
    "merge": "Combine the shard outputs of `adapt --shard I/N` into one dataset folder.",
    "report": "Write a self-contained HTML report of an adapted dataset folder, or of training / eval runs.",
    "push": "Publish a finished adapt output folder to the Hugging Face Hub (one commit).",
    "card": "(Re)render the dataset card (README.md) of an adapt output folder.",
    "eval": "Evaluate a model on math benchmarks (Table 1's five by default; pass@k with --samples).",
    "compare": "Compare eval runs side by side (the paper's Table 1 layout).",
    "mapper": "Train the rewriting mapper (adapt --method mapper) with GRPO; own design, not a reproduction.",
    "train": "Fine-tune a student on adapted data (SFT or DAIL's objective), keep the best epoch, publish it.",
}


class LazyGroup(click.Group):
    """Loads each command's module on first use, and turns DartHubError into a one-line error."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"dart_hub.commands.{name}")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help without importing every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name]) for name in sorted(COMMANDS)])

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DartHubError as error:
            # One line, no traceback: the message already says what to do.
            message = " ".join(str(error).split())
            click.echo(f"Error: {message}", err=True)
            ctx.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dart-hub")
def cli() -> None:
    """dart-hub: adapt expert reasoning datasets to small language models with DART
    (Dynamic Adaptation of Reasoning Trajectories) and publish them on the Hugging Face Hub.

    \b
    Typical use:
      dart-hub inspect limo --limit 3
      dart-hub adapt --student Qwen/Qwen2.5-1.5B-Instruct --dataset limo --output out/limo-1.5b
    """


def main() -> None:
    cli(prog_name="dart-hub")


if __name__ == "__main__":
    sys.exit(main())
