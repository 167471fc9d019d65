"""Fault and bad-input cases, run as a user would: outcome and time to the first error line.

    python benchmarks/faults.py              # every case, a Markdown table on stdout
    python benchmarks/faults.py --only server

Each case runs `dart-hub` in a subprocess and is classified:

- clean: exit status 1 (or 0 where the bad rows are skipped), no traceback, and for errors one
  line on stderr (retry status lines included, if any);
- traceback: a Python traceback reached the user;
- hang: no exit within the case's limit (120 s);
- unclear: anything else (several lines, a wrong exit status).

Servers: the Hub emulator of the tests in its "hanging" mode (reads every request, never
answers), a listening socket that never accepts (a black hole) and a closed port (refused), for
`inspect <hub dataset>`, `push`, `adapt --push-to-hub` and `adapt --student <hub id>`, with
huggingface_hub's default HF_HUB_ETAG_TIMEOUT (10 s) unless the environment sets it. The figure
is the time from the process start to its first stderr line (Python start-up and imports
included: about 3 s of each figure on the reference machine).

Figures are in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data"
LIMIT = 120


def run_case(args: list[str], env: dict[str, str], expect_rc: int = 1, preexec=None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "dart_hub.cli", *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=preexec)  # fmt: skip
    first: list[float] = []
    lines: list[str] = []

    def read_stderr() -> None:
        for line in process.stderr:
            if line.strip():
                if not first:
                    first.append(time.monotonic() - started)
                lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        process.wait(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return {"outcome": "hang", "first_line_s": None, "line": ""}
    reader.join(timeout=5)
    process.stdout.close()
    text = "\n".join(lines)
    if "Traceback" in text:
        outcome = "traceback"
    elif process.returncode == expect_rc and (expect_rc == 0 or len([x for x in lines if not x.startswith("Hub request failed")]) == 1):
        outcome = "clean"
    else:
        outcome = "unclear"
    error_lines = [x for x in lines if x.startswith("Error")]
    return {
        "outcome": outcome,
        "first_line_s": round(first[0], 1) if first and expect_rc else None,
        "line": (error_lines or lines or [""])[-1][:160],
        "rc": process.returncode,
    }


def static_folder(root: Path, name: str, limit: str) -> Path:
    out = root / name
    result = run_case(["adapt", "--student", "nobody/none", "--dataset", str(DATA / "limo_sample.jsonl"), "--strategy", "static",
                       "--output", str(out), "--work-dir", str(root / f"w-{name}"), "--quiet", "--limit", limit], {}, expect_rc=0)  # fmt: skip
    assert result["outcome"] == "clean", result
    return out


def server_cases(root: Path) -> list[tuple[str, dict]]:
    from tests.hub_emulator import DEFAULT_TOKEN, DEFAULT_USER, HubEmulator

    folder = static_folder(root, "pushable", "2")
    adapt = ["adapt", "--dataset", str(DATA / "limo_sample.jsonl"), "--work-dir", str(root / "w-server"), "--quiet", "--engine", "transformers"]
    commands = {
        "inspect owner/dataset": ["inspect", "owner/some-dataset"],
        "push": ["push", str(folder), f"{DEFAULT_USER}/x"],
        "adapt --push-to-hub": [*adapt, "--student", "./local-model", "--push-to-hub", f"{DEFAULT_USER}/x"],
        "adapt --student owner/model": [*adapt, "--student", "owner/some-model"],
    }
    results = []
    base_env = {"HF_TOKEN": DEFAULT_TOKEN, "HF_HOME": str(root / "hf"), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    emulator = HubEmulator().start()
    emulator.hanging = True
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(64)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{probe.getsockname()[1]}"
    servers = {
        "hub never answers": emulator.url,
        "black hole (accepts, never reads)": f"http://127.0.0.1:{black_hole.getsockname()[1]}",
        "connection refused": refused,
    }
    try:
        for server, url in servers.items():
            for name, args in commands.items():
                results.append((f"{server}: {name}", run_case(args, {**base_env, "HF_ENDPOINT": url})))
    finally:
        emulator.stop()
        black_hole.close()
    return results


def input_cases(root: Path) -> list[tuple[str, dict]]:
    cases: list[tuple[str, dict]] = []
    good = (DATA / "limo_sample.jsonl").read_bytes()
    files = {
        "one invalid JSON line": good + b'{"question": "broken", \n',
        "non-UTF-8 line": good + b'\xff\xfe{"question": "x"}\n',
        "deeply nested extra column": good + json.dumps({"question": "q?", "solution": "\\boxed{1}", "answer": "1", "x": json.loads("[" * 500 + "]" * 500)}).encode() + b"\n",
        "100,000 nested brackets": good + b"[" * 100_000 + b"\n",
        "a JSON list on a line": good + b"[1, 2]\n",
    }
    for name, content in files.items():
        path = root / f"{name.replace(' ', '_')}.jsonl"
        path.write_bytes(content)
        cases.append((f"inspect: {name}", run_case(["inspect", str(path)], {}, expect_rc=0)))
    whole = {
        "UTF-16 file": ("u16.jsonl", "\ufeff{}".encode("utf-16")),
        "broken JSON array": ("broken.json", b'[{"question": "a"},\n{"question": '),
        "not parquet": ("bad.parquet", b"PAR1 not parquet"),
        "empty file": ("empty.jsonl", b""),
    }
    for name, (filename, content) in whole.items():
        path = root / filename
        path.write_bytes(content)
        cases.append((f"inspect: {name}", run_case(["inspect", str(path)], {})))
    directory = root / "dir.jsonl"
    directory.mkdir()
    cases.append(("inspect: a folder named .jsonl with nothing in it", run_case(["inspect", str(directory)], {})))

    # work dir and output folder
    work = root / "w-damaged"
    args = ["adapt", "--student", "nobody/none", "--dataset", str(DATA / "limo_sample.jsonl"), "--strategy", "static",
            "--output", str(root / "o-damaged"), "--work-dir", str(work), "--quiet", "--chunk-size", "1"]  # fmt: skip
    run_case(args, {}, expect_rc=0)
    chunk = sorted((work / "chunks").glob("chunk-*.jsonl"))[0]
    chunk.write_text(chunk.read_text()[:30])
    cases.append(("adapt: hand-damaged work-dir chunk", run_case(args, {})))
    a, b = static_folder(root, "run-a", "2"), static_folder(root, "run-b", "3")
    mixed = root / "mixed"
    shutil.copytree(a, mixed)
    shutil.copy(b / "data" / "train-00000-of-00001.parquet", mixed / "data" / "train-00000-of-00001.parquet")
    cases.append(("card --check: parts of two runs", run_case(["card", str(mixed), "--check"], {})))
    cases.append(("push: parts of two runs", run_case(["push", str(mixed), "me/x"], {"HF_TOKEN": "hf_" + "x" * 30, "HF_ENDPOINT": "http://127.0.0.1:9"})))

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))

    full = ["adapt", "--student", "nobody/none", "--dataset", str(DATA / "limo_sample.jsonl"), "--strategy", "static",
            "--output", str(root / "o-full"), "--work-dir", str(root / "w-full"), "--quiet", "--chunk-size", "1"]  # fmt: skip
    cases.append(("adapt: disk full (file size limit) while writing the output", run_case(full, {}, preexec=small_disk)))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["server", "input"], default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dart-hub-faults-"))
    os.environ.setdefault("DART_HUB_CACHE", str(root / "cache"))
    try:
        results = []
        if args.only in (None, "input"):
            results += input_cases(root)
        if args.only in (None, "server"):
            results += server_cases(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("| case | outcome | first error line after | message |")
    print("|---|---|---|---|")
    for name, result in results:
        seconds = "-" if result["first_line_s"] is None else f"{result['first_line_s']} s"
        message = result["line"].replace("|", "\\|")
        print(f"| {name} | {result['outcome']} | {seconds} | {message} |")
    counts: dict[str, int] = {}
    for _, result in results:
        counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
    print(f"\n{len(results)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
