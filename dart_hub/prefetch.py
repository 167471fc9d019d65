"""What recipes need (the student model, the source dataset, the evaluation benchmarks) fetched
into the Hugging Face cache once (`dart-hub prefetch`, `dart_hub.api.prefetch`), before a Slurm
array or a multi-node job starts many processes that would otherwise all download the same files
at the same time.

The cache is the user's own (HF_HOME / HF_HUB_CACHE / HF_DATASETS_CACHE, where `hf auth login`
also keeps the token): run it where those point to the same folders as on the compute nodes.
Nodes without internet then run with HF_HUB_OFFLINE=1 (scripts/slurm/*.sbatch: OFFLINE=1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError

# What transformers and vLLM read (not the original/ folders of consolidated .pth weights).
MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.tiktoken", "*.txt", "*.jinja", "*.py"]


@dataclass
class Fetched:
    """One thing in the cache: its recipe, kind (model, dataset, benchmark), name and where it
    is (the model's cache folder, "local folder", "N problems (revision ...)", "N items")."""

    recipe: Path
    kind: str
    name: str
    where: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "where": self.where}


def prefetch_recipes(recipe_paths: Iterable[str | Path], overrides: Iterable[str] = (), with_eval: bool = True,
                     on_fetch: Callable[[Fetched], None] | None = None) -> list[Fetched]:  # fmt: skip
    """Fetch each recipe's model, dataset and (with `with_eval`) benchmarks, each once across
    the recipes; `on_fetch` is called as each one is in the cache."""
    from dart_hub.recipe_runner import expand_recipe_paths
    from dart_hub.recipes import load_recipe

    fetched: list[Fetched] = []
    seen: set[tuple[str, ...]] = set()
    for path in expand_recipe_paths([str(p) for p in recipe_paths]):
        recipe = load_recipe(path, list(overrides))
        student = recipe.section("student")
        for item in _fetch_recipe(recipe, student, with_eval, seen):
            done = Fetched(recipe=path, **item)
            if on_fetch is not None:
                on_fetch(done)
            fetched.append(done)
    return fetched


def _fetch_recipe(recipe, student: dict[str, Any], with_eval: bool, seen: set[tuple[str, ...]]) -> Iterator[dict[str, str]]:
    model = student.get("model")
    if model and ("model", model, str(student.get("revision"))) not in seen:
        seen.add(("model", model, str(student.get("revision"))))
        yield {"kind": "model", "name": model, "where": fetch_model(model, student.get("revision"))}
    if recipe.adapts:
        from dart_hub.recipes import adapt_options
        from dart_hub.sources import load_source, source_spec

        options = adapt_options(recipe, recipe.output, quiet=True)
        key = ("source", str(options["dataset"]), str(options["revision"]), str(options["split"]))
        if key not in seen:
            seen.add(key)
            source = load_source(source_spec(options["dataset"], options, options["limit"]))
            yield {"kind": "dataset", "name": str(options["dataset"]), "where": f"{len(source.problems)} problems ({_revision(source)})"}
    if with_eval and "eval" in recipe.stages():
        from dart_hub.evaluation.benchmarks import load_benchmark, parse_benchmark_list
        from dart_hub.recipe_runner import eval_options

        options = eval_options(recipe)
        for name in parse_benchmark_list(options["benchmarks"]):
            if ("benchmark", name) in seen:
                continue
            seen.add(("benchmark", name))
            items = load_benchmark(name)
            yield {"kind": "benchmark", "name": name, "where": f"{len(items)} items"}


def _revision(source) -> str:
    return f"revision {source.revision[:12]}" if source.revision else "local"


def fetch_model(model: str, revision: str | None = None) -> str:
    """The model's files in the Hub cache (`snapshot_download`); a local folder is left alone."""
    from dart_hub.engines.transformers import _looks_like_path

    if _looks_like_path(model):
        if not Path(model).expanduser().is_dir():
            raise DartHubError(f"student model {model}: no such folder")
        return "local folder"
    from huggingface_hub import errors as hx
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(model, revision=revision, allow_patterns=MODEL_FILES)
    except hx.GatedRepoError:
        raise DartHubError(f"student model {model} is gated: accept its terms on its Hub page, then run `hf auth login` or set HF_TOKEN") from None
    except hx.RepositoryNotFoundError:
        raise DartHubError(f"student model {model} is not on the Hub (or private: run `hf auth login` or set HF_TOKEN)") from None
    except hx.RevisionNotFoundError:
        raise DartHubError(f"revision {revision!r} not found for student model {model}") from None
    return folder
