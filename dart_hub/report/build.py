"""Which report for which paths (`dart-hub report`, `dart_hub.api.report`): one adapt output
folder gives the dataset report, run / eval / train folders the runs report."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dart_hub.errors import DartHubError


@dataclass
class ReportResult:
    """The report's index.html, its size in bytes and its number of files."""

    index: Path
    bytes: int
    files: int

    def to_dict(self) -> dict:
        return {"index": str(self.index), "bytes": self.bytes, "files": self.files}


def is_dataset_folder(path: Path) -> bool:
    from dart_hub.publish.layout import CONFIG_FILE, STEPS_FILE

    return (path / CONFIG_FILE).is_file() and (path / STEPS_FILE).is_file()


def write_report(paths: Iterable[str | Path], output: str | Path | None = None) -> ReportResult:
    """Write the report of an adapt output folder (default FOLDER/report), or of run / eval /
    train folders (default ./dart-hub-report); the output folder is replaced as a whole."""
    from dart_hub.report.render import write_dataset_report, write_runs_report

    paths = [Path(p) for p in paths]
    output = Path(output) if output is not None else None
    for path in paths:
        if not path.exists():
            raise DartHubError(f"{path} does not exist; pass an adapt output folder or run / eval / train folders")
    datasets = [p for p in paths if is_dataset_folder(p)]
    if datasets and len(paths) > 1:
        raise DartHubError("give one adapt output folder, or only run / eval / train folders (a dataset report covers one folder)")
    if datasets:
        from dart_hub.publish.folder import check_same_run

        check_same_run(datasets[0])  # a report over parts of two runs would describe neither
        index = write_dataset_report(datasets[0], output)
    else:
        index = write_runs_report(tuple(paths), output or Path("dart-hub-report"))
    size = sum(f.stat().st_size for f in index.parent.rglob("*") if f.is_file())
    files = sum(1 for f in index.parent.rglob("*") if f.is_file())
    return ReportResult(index=index, bytes=size, files=files)
