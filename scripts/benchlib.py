"""What both benchmark scripts record: the machine, its load, its speed, sample statistics."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import statistics
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# Olive's telemetry treats any of these as "running in CI" (olive/telemetry/telemetry.py).
CI_VARS = (
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
)


def machine(dists: tuple[str, ...]) -> dict[str, Any]:
    """nproc, CPU model, RAM, date, versions: what a reader needs to compare numbers."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor(),
    )
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
    kib = int(next(ln.split()[1] for ln in meminfo.splitlines() if ln.startswith("MemTotal")))
    versions = {}
    for dist in dists:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout

    dirty = git("status", "--porcelain", "--", "src", "templates", "workflows").splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(kib / 2**20, 1),
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "git_commit": git("rev-parse", "--short", "HEAD").strip(),
        # Benchmarks run on the working tree: say which source files differ from the commit.
        "uncommitted_source_files": [line[3:] for line in dirty if line.strip()],
        "versions": versions,
    }


def cpu_busy_s() -> float:
    """CPU seconds all processes of the machine have used since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text(encoding="utf-8").split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_calibration(repeats: int = 5) -> dict[str, float]:
    """Seconds a fixed pure-Python loop takes, to compare this machine's speed across runs.

    The VM's CPU speed itself drifts (the same loop varies ~1.5x minute to minute), which no
    load average shows.
    """
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        sum(i * i for i in range(2_000_000))
        samples.append(time.perf_counter() - start)
    return {"min_s": round(min(samples), 3), "median_s": round(statistics.median(samples), 3)}


def stats(samples: list[float], digits: int = 3) -> dict[str, Any]:
    return {
        "n": len(samples),
        "median_s": round(statistics.median(samples), digits),
        "min_s": round(min(samples), digits),
        "max_s": round(max(samples), digits),
        "samples_s": [round(s, digits) for s in samples],
    }


def calibration_note(result: dict[str, Any]) -> str:
    cal = result.get("cpu_calibration")
    if not cal:
        return ""
    return (
        f"; CPU calibration loop {cal['start']['min_s']:.3f} s at start, "
        f"{cal['end']['min_s']:.3f} s at end (lower = faster host)"
    )


def fmt_load(load: list[float]) -> str:
    return "/".join(f"{x:.2f}" for x in load)
