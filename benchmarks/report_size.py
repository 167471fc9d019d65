"""Size and load time of the HTML report on a LIMO-sized adapted folder (synthetic records).

    python benchmarks/report_size.py                    # 817 problems, ~30 KB expert traces
    python benchmarks/report_size.py --problems 100 --browser

The folder is written by the real writer (`write_folder`) from synthetic AdaptedExample
records shaped like a LIMO run of Adaptation-Full: 817 problems, expert solutions of ~30 KB in
60 steps, f_t over every step (the last ones answer-revealing), a cut at a gap, 8 exploration
candidates of ~6 KB (one chosen), a kept trajectory. Reported: the time `write_dataset_report`
takes, the size of index.html, of the problem pages and of the whole report; with --browser,
headless Chromium (Debian's, as the browser tests use it) opens index.html from disk (time to
the load event and to the list being ready), filters the list by a search, and opens the
largest problem page.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dart_hub.records import AdaptedExample, Candidate  # noqa: E402

WORDS = ["we", "consider", "the", "sum", "of", "the", "terms", "and", "note", "that", "x", "squared", "plus", "y", "equals", "the", "value", "so", "that", "by", "symmetry", "each", "factor", "divides", "n"]


def text(rng: random.Random, chars: int) -> str:
    out, size = [], 0
    while size < chars:
        word = rng.choice(WORDS)
        if rng.random() < 0.05:
            word = f"$\\frac{{{rng.randint(1, 99)}}}{{{rng.randint(2, 99)}}}$"
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def example(index: int, rng: random.Random, steps: int = 60, step_chars: int = 500) -> AdaptedExample:
    from dart_hub.steps import join_steps

    expert = [text(rng, step_chars) for _ in range(steps - 1)] + [f"So the answer is \\boxed{{{index}}}."]
    reveal = steps - 1
    gap = rng.randint(8, reveal - 2)
    peak = rng.randint(0, gap - 1)
    scores = [round(rng.choice([0.75, 1.0]), 2) if t < gap else rng.choice([0.0, 0.25]) for t in range(reveal)] + [None]
    scores[peak] = 1.0
    successes = [None if f is None else int(f * 4) for f in scores]
    candidates = [
        Candidate(text=text(rng, 6000) + f" \\boxed{{{index if j % 3 == 0 else index + 1}}}", answer=str(index if j % 3 == 0 else index + 1),
                  correct=j % 3 == 0, repetition=rng.random() * 0.4, completion_tokens=1500, finish_reason="stop" if j != 7 else "length",
                  origin="explore", kept=j == 0)  # fmt: skip
        for j in range(8)
    ]
    trajectory = join_steps([*expert[:gap], candidates[0].text])
    return AdaptedExample(
        id=f"{index:06x}{rng.getrandbits(40):010x}", question=text(rng, 600), gold=str(index), expert_solution=join_steps(expert),
        expert_steps=expert, provenance={"source": "limo", "row_index": index}, extra={}, strategy="full", scores=scores,
        successes=successes, peak=peak, gap=gap, cut_reason="gap", keep_steps=gap, candidates=candidates, trajectories=[trajectory],
        outcome="kept", discard_reason=None, rollouts=4 * reveal + 8, prompt_tokens=400_000, completion_tokens=60_000,
        reveal_step=reveal, samples=[4] * reveal + [0],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=817)
    parser.add_argument("--browser", action="store_true", help="also open the report in headless Chromium")
    parser.add_argument("--keep", type=Path, default=None, help="write the folder here (kept) instead of a temporary folder")
    args = parser.parse_args()

    from dart_hub.config import AdaptConfig
    from dart_hub.publish.folder import write_folder
    from dart_hub.report.render import write_dataset_report

    rng = random.Random(0)
    examples = [example(i, rng) for i in range(args.problems)]
    expert_kb = sum(len(e.expert_solution) for e in examples) / len(examples) / 1000
    root = args.keep or Path(tempfile.mkdtemp(prefix="dart-hub-report-bench-"))
    config = AdaptConfig()
    from tests.test_publish_folder import (
        run_config as test_run_config,  # complete, as adapt writes it
    )

    run_config = test_run_config(examples, config, engine={"engine": "vllm", "model": "Qwen/Qwen2.5-1.5B-Instruct", "device": "cuda"})
    run_config["summary"]["seconds"] = 21600.0
    started = time.perf_counter()
    folder = write_folder(root / "limo-synthetic", examples, run_config, {"question": "question", "solution": "solution", "answer": "answer"}, "")
    print(f"{args.problems} problems, mean expert solution {expert_kb:.1f} KB; folder written in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    index = write_dataset_report(folder)
    seconds = time.perf_counter() - started
    pages = sorted((index.parent / "problems").glob("*.html"))
    sizes = [p.stat().st_size for p in pages]
    total = index.stat().st_size + sum(sizes)
    print(f"write_dataset_report: {seconds:.1f} s")
    print(f"index.html: {index.stat().st_size / 1e6:.2f} MB; problem pages: {len(pages)}, mean {sum(sizes) / len(sizes) / 1e3:.0f} KB, "
          f"max {max(sizes) / 1e3:.0f} KB; whole report {total / 1e6:.1f} MB")  # fmt: skip
    if args.browser:
        browse(index, pages[sizes.index(max(sizes))])


def browse(index: Path, largest: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.browser import chromium

    with chromium() as driver:
        for attempt in range(3):  # the first load includes the browser's own warm-up
            started = time.perf_counter()
            driver.get(index.as_uri())
            wall = time.perf_counter() - started
            timing = driver.execute_script(
                "const t = performance.getEntriesByType('navigation')[0]; return [t.domContentLoadedEventEnd, t.loadEventEnd]"
            )
            ready = driver.execute_script("return document.documentElement.dataset.ready")
            print(f"index load #{attempt + 1}: DOMContentLoaded {timing[0]:.0f} ms, load event {timing[1]:.0f} ms "
                  f"(driver.get {wall * 1000:.0f} ms), list ready: {ready == '1'}")  # fmt: skip
        filtered = driver.execute_script(
            "const s = document.getElementById('search'); const t0 = performance.now(); s.value = 'symmetry divides';"
            "s.dispatchEvent(new Event('input')); return [performance.now() - t0, document.getElementById('shown-count').textContent]"
        )
        print(f"search filter over the list: {filtered[0]:.0f} ms ({filtered[1]} shown)")
        sort = driver.execute_script(
            "const s = document.getElementById('sort'); const t0 = performance.now(); s.value = 'cut';"
            "s.dispatchEvent(new Event('change')); return performance.now() - t0"
        )
        print(f"sort by cut position: {sort:.0f} ms")
        driver.get(largest.as_uri())
        timing = driver.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd")
        print(f"largest problem page ({largest.stat().st_size / 1e3:.0f} KB): load event {timing:.0f} ms")


if __name__ == "__main__":
    main()
