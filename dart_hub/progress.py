"""Progress output of the libraries dart-hub drives (datasets, huggingface_hub)."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def library_progress_bars(enabled: bool):
    """--quiet / --json: no 'Generating test split' or download bars from datasets / the Hub
    (restored afterwards: the CLI may run inside a longer-lived process)."""
    import datasets
    import huggingface_hub.utils as hub_utils

    if enabled:
        yield
        return
    restore_datasets = datasets.is_progress_bar_enabled()
    restore_hub = not hub_utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    hub_utils.disable_progress_bars()
    try:
        yield
    finally:
        if restore_datasets:
            datasets.enable_progress_bars()
        if restore_hub:
            hub_utils.enable_progress_bars()
