"""Transfer benchmark: AnaplanHook.upload_file / download_file against a plain ``requests`` loop.

Why: the provider promises chunked transfers whose memory does not grow with the file
(target: peak below 150 MB whatever the file size) and that cost little over the simplest
correct client (target: at least 90% of a plain ``requests`` loop's throughput).

What: a file of ``--size-mib`` MiB (1 GiB by default; each 1 MiB block is distinct, so a
misplaced chunk changes the hash) is uploaded to, and downloaded from, the sandbox's Anaplan
file 113000000001:

- provider upload: ``AnaplanHook.upload_file(chunk_size=..., max_parallel=4)`` (and 1 in flight);
- baseline upload: one ``requests.Session``: authenticate, POST the chunk count, PUT each chunk;
- provider download: ``AnaplanHook.download_file`` to a temporary path;
- baseline download: GET the chunk list, stream each chunk to a file;
- control: the baseline loops again, in a process that imported the provider (and Airflow), to
  separate the provider code's cost from the cost of living in an Airflow process.

Each scenario runs in its own fresh interpreter (``--worker``), so its memory is its own: the RSS
just before the transfer (importing Airflow alone costs ~125 MiB) and the peak RSS during it (the
kernel's high-water mark reset before the transfer; ``ru_maxrss`` kept as well). The sandbox runs
in another process. After every upload the file the sandbox stored is streamed back and its
SHA-256 compared with the source's; every download is hashed the same way. A run whose check fails
is reported and the script exits non-zero. Before each run dirty pages are flushed and the script
waits (bounded) for neighbours to go quiet; what they used anyway is recorded.

Run from the repository root: ``python benchmarks/transfer.py`` (``--help`` for options).
Writes ``benchmarks/results/transfer.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests
from _common import (
    FILE_ID,
    LOGIN,
    MIB,
    MODEL_ID,
    PASSWORD,
    RESULTS_DIR,
    WORKSPACE_ID,
    Sandbox,
    current_rss,
    emit_result,
    load_spec,
    machine_info,
    markdown_table,
    mib,
    peak_rss,
    peak_rss_since_reset,
    reset_peak_rss,
    run_worker,
    stats_delta,
    system_busy_seconds,
    wait_for_quiet,
    workdir,
    worker_env,
    write_results,
)

SCRIPT = Path(__file__).resolve()
CONTENT_TYPE = "application/octet-stream"
IMPL_LABELS = {"baseline-airflow": "baseline, Airflow loaded (control)"}
SEED = 20261122

# ----------------------------------------------------------------------------------- worker side


def _api_file_url(url: str) -> str:
    """The API URL of the benchmark's model file."""
    return f"{url}/anaplan/api/2/0/workspaces/{WORKSPACE_ID}/models/{MODEL_ID}/files/{FILE_ID}"


def baseline_upload(url: str, source: str, chunk_size: int) -> dict[str, Any]:
    """The simplest correct client: log in, announce the chunk count, PUT chunks one by one."""
    file_url = _api_file_url(url)
    with requests.Session() as session:
        login = session.post(f"{url}/anaplan/auth/token/authenticate", auth=(LOGIN, PASSWORD), timeout=60)
        login.raise_for_status()
        session.headers["Authorization"] = f"AnaplanAuthToken {login.json()['tokenInfo']['tokenValue']}"
        size = os.path.getsize(source)
        count = max(1, math.ceil(size / chunk_size))
        session.post(file_url, json={"chunkCount": count}, timeout=60).raise_for_status()
        sent = 0
        with open(source, "rb") as handle:
            for index in range(count):
                data = handle.read(chunk_size)
                response = session.put(
                    f"{file_url}/chunks/{index}", data=data, headers={"Content-Type": CONTENT_TYPE}, timeout=300
                )
                response.raise_for_status()
                sent += len(data)
                del data, response  # the response keeps its request body alive
    return {"chunk_count": count, "bytes": sent}


def baseline_download(url: str, destination: str) -> dict[str, Any]:
    """The simplest correct download: list the chunks, stream each one to the file in 1 MiB pieces."""
    file_url = _api_file_url(url)
    total = 0
    with requests.Session() as session:
        login = session.post(f"{url}/anaplan/auth/token/authenticate", auth=(LOGIN, PASSWORD), timeout=60)
        login.raise_for_status()
        session.headers["Authorization"] = f"AnaplanAuthToken {login.json()['tokenInfo']['tokenValue']}"
        listing = session.get(f"{file_url}/chunks", timeout=60)
        listing.raise_for_status()
        chunks = listing.json().get("chunks") or []
        with open(destination, "wb") as out:
            for chunk in chunks:
                with session.get(f"{file_url}/chunks/{chunk['id']}", stream=True, timeout=300) as response:
                    response.raise_for_status()
                    for piece in response.iter_content(chunk_size=MIB):
                        out.write(piece)
                        total += len(piece)
    return {"chunk_count": len(chunks), "bytes": total}


def _scenario_action(spec: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """The measured call of a scenario; imports (Airflow included) happen here, before measuring."""
    if spec["impl"] == "baseline-airflow":  # the control: the plain loop in a process that loaded Airflow
        import airflow_provider_sapplan.hooks.anaplan  # noqa: F401
    if spec["impl"] == "provider":
        from airflow_provider_sapplan.hooks.anaplan import AnaplanHook

        hook = AnaplanHook("anaplan_default")
        if spec["kind"] == "upload":
            return lambda: hook.upload_file(
                FILE_ID, spec["source"], chunk_size=spec["chunk_size"], max_parallel=spec["max_parallel"]
            )
        return lambda: hook.download_file(FILE_ID, spec["destination"])
    if spec["kind"] == "upload":
        return lambda: baseline_upload(spec["url"], spec["source"], spec["chunk_size"])
    return lambda: baseline_download(spec["url"], spec["destination"])


def worker(spec: dict[str, Any]) -> None:
    """Run one scenario in this (fresh) process and print its measurements."""
    action = _scenario_action(spec)
    system_busy_seconds()  # imports psutil now, not inside the measured window
    gc.collect()
    rss_before = current_rss()
    peak_before = peak_rss()
    peak_reset = reset_peak_rss()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    busy_before = system_busy_seconds()
    started = time.perf_counter()
    cpu_started = time.process_time()
    outcome = action()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    peak_after = peak_rss_since_reset() if peak_reset else peak_rss()
    busy = system_busy_seconds() - busy_before
    emit_result(
        {
            "wall_s": wall,
            "cpu_s": cpu,
            "cpu_user_s": usage_after.ru_utime - usage_before.ru_utime,
            "cpu_sys_s": usage_after.ru_stime - usage_before.ru_stime,
            "minor_faults": usage_after.ru_minflt - usage_before.ru_minflt,
            "system_busy_s": busy,
            "rss_before": rss_before,
            "peak_rss_before": peak_before,
            "peak_rss": peak_after,
            "peak_rss_reset": peak_reset,
            "ru_maxrss": peak_rss(),
            "rss_after": current_rss(),
            "outcome": {k: v for k, v in outcome.items() if isinstance(v, (int, str))},
        }
    )


# ----------------------------------------------------------------------------------- parent side


def make_source(path: Path, size_mib: int) -> str:
    """Write ``size_mib`` MiB cheaply: one random 1 MiB block, each copy stamped with its index."""
    block = bytearray(random.Random(SEED).randbytes(MIB))
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for index in range(size_mib):
            block[:16] = f"{index:016d}".encode()
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(MIB):
            digest.update(piece)
    return digest.hexdigest()


def busy_note(quiet: dict[str, Any]) -> str:
    """A warning for the progress line when a neighbour kept the machine busy before the run."""
    return "" if quiet["quiet"] else f"  (machine busy before: {quiet['other_load_cores']} cores)"


def warm_up(url: str, source: Path, scratch: Path, *, upload: bool) -> None:
    """Unmeasured transfers (by the parent) before the first upload and before each round's downloads.

    On this VM the first 1 GiB written after a phase of other writes is markedly slower (client
    CPU included) whoever writes it: without a warm-up that penalty lands on whichever scenario runs
    first, not on the client that deserves it.
    """
    if upload:
        baseline_upload(url, str(source), 10 * MIB)
    baseline_download(url, str(scratch))
    scratch.unlink()


def scenario_plan(chunk_mibs: Sequence[int], max_parallel: int, repeat: int) -> list[dict[str, Any]]:
    """Scenarios in run order; the order flips between repeats so no client always goes first.

    Uploads with the largest chunks run first, so the file the downloads read is stored in the
    smallest chunk size (10 MiB by default, the size of Anaplan's export chunks). Besides the
    provider and the plain loop, every round runs the control ``baseline-airflow``: the same plain
    loop in a process that imported the provider (and so Airflow), which separates what the
    provider's code costs from what merely living in an Airflow process costs.
    """
    plan: list[dict[str, Any]] = []
    for round_index in range(repeat):
        flip = round_index % 2 == 1
        scenarios: list[dict[str, Any]] = []
        for chunk_mib in sorted(set(chunk_mibs), reverse=True):
            uploads = [
                {"kind": "upload", "impl": "provider", "chunk_mib": chunk_mib, "max_parallel": max_parallel},
                {"kind": "upload", "impl": "baseline", "chunk_mib": chunk_mib, "max_parallel": 1},
                {"kind": "upload", "impl": "baseline-airflow", "chunk_mib": chunk_mib, "max_parallel": 1},
            ]
            if max_parallel != 1:
                uploads.append({"kind": "upload", "impl": "provider", "chunk_mib": chunk_mib, "max_parallel": 1})
            scenarios.extend(reversed(uploads) if flip else uploads)
        # Downloads vary most (the kernel's copy into the page cache differs run to run on this VM),
        # so each round runs every download twice, in mirrored order (A B C C B A).
        order = ["provider", "baseline", "baseline-airflow"]
        if flip:
            order.reverse()
        scenarios.extend(
            {"kind": "download", "impl": impl, "chunk_mib": None, "max_parallel": 1}
            for impl in (*order, *reversed(order))
        )
        plan.extend({**item, "round": round_index + 1} for item in scenarios)
    return plan


def scenario_key(item: dict[str, Any]) -> str:
    """Groups repeats of the same scenario."""
    if item["kind"] == "download":
        return f"download {item['impl']}"
    return f"upload {item['impl']} {item['chunk_mib']} MiB x{item['max_parallel']}"


def run_plan(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    """Create the source, start the sandbox, run and verify every scenario."""
    source = base / "source.bin"
    print(f"Writing a {args.size_mib} MiB source file to {source} ...", flush=True)
    source_sha = make_source(source, args.size_mib)
    size = source.stat().st_size
    runs: list[dict[str, Any]] = []
    with Sandbox(base / "sandbox-data", base / "sandbox.log") as sandbox:
        env = worker_env(sandbox.url, base)
        timeout = 120 + args.size_mib * 0.5
        warm_up(sandbox.url, source, base / "warm-up.bin", upload=True)
        previous_kind = "upload"
        for number, item in enumerate(scenario_plan(args.chunk_mib, args.max_parallel, args.repeat), start=1):
            if item["kind"] == "download" and previous_kind != "download":
                warm_up(sandbox.url, source, base / "warm-up.bin", upload=False)
            previous_kind = item["kind"]
            spec = {
                **item,
                "name": scenario_key(item),
                "url": sandbox.url,
                "source": str(source),
                "destination": str(base / "download.bin"),
                "chunk_size": (item["chunk_mib"] or 0) * MIB,
            }
            if item["kind"] == "upload":
                sandbox.write_file(FILE_ID, b"reset before the next upload\n")
            # Flush what earlier scenarios wrote (source, sandbox blobs, downloads): otherwise the
            # kernel's dirty-page throttling lands on whichever scenario happens to write next.
            os.sync()
            quiet = wait_for_quiet(args.quiet_wait)
            stats_before = sandbox.stats()
            server_cpu_before = sandbox.cpu_seconds()
            result = run_worker(SCRIPT, spec, env, base / f"worker-{number}.log", timeout)
            server_cpu = sandbox.cpu_seconds() - server_cpu_before
            served = stats_delta(stats_before, sandbox.stats())
            if item["kind"] == "upload":
                stored_sha, stored_size = sandbox.file_sha256(FILE_ID)
            else:
                stored_size = (base / "download.bin").stat().st_size
                stored_sha = sha256_of(base / "download.bin")
                (base / "download.bin").unlink()
            verified = stored_sha == source_sha and stored_size == size
            run = {
                **{k: spec[k] for k in ("name", "kind", "impl", "chunk_mib", "max_parallel", "round")},
                **result,
                "bytes": size,
                "mib_per_s": size / MIB / result["wall_s"],
                "server_cpu_s": server_cpu,
                "other_cpu_s": max(0.0, result["system_busy_s"] - result["cpu_s"] - server_cpu),
                "served": served,
                "verified": verified,
                "machine_before": quiet,
            }
            runs.append(run)
            print(
                f"[{number:2d}] {run['name']:<34} {run['mib_per_s']:7.1f} MiB/s  wall {run['wall_s']:6.2f} s  "
                f"cpu {run['cpu_s']:5.2f} s  peak {mib(run['peak_rss']):6.1f} MiB  "
                f"+{mib(run['peak_rss'] - run['rss_before']):6.1f} MiB  "
                f"{'verified' if verified else 'CONTENT MISMATCH'}{busy_note(quiet)}",
                flush=True,
            )
    return {"source_sha256": source_sha, "bytes": size, "runs": runs}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per scenario: median throughput (min-max over repeats), worst-case memory."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(run["name"], []).append(run)
    rows: list[dict[str, Any]] = []
    for name, items in groups.items():
        speeds = [r["mib_per_s"] for r in items]
        rows.append(
            {
                "name": name,
                "kind": items[0]["kind"],
                "impl": items[0]["impl"],
                "chunk_mib": items[0]["chunk_mib"],
                "max_parallel": items[0]["max_parallel"],
                "runs": len(items),
                "mib_per_s_median": statistics.median(speeds),
                "mib_per_s_min": min(speeds),
                "mib_per_s_max": max(speeds),
                "wall_s_median": statistics.median(r["wall_s"] for r in items),
                "cpu_s_median": statistics.median(r["cpu_s"] for r in items),
                "cpu_user_s_median": statistics.median(r["cpu_user_s"] for r in items),
                "cpu_sys_s_median": statistics.median(r["cpu_sys_s"] for r in items),
                "server_cpu_s_median": statistics.median(r["server_cpu_s"] for r in items),
                "other_cpu_s_median": statistics.median(r["other_cpu_s"] for r in items),
                "peak_rss_max": max(r["peak_rss"] for r in items),
                "rss_before_median": statistics.median(r["rss_before"] for r in items),
                "rss_increase_max": max(r["peak_rss"] - r["rss_before"] for r in items),
                "verified": all(r["verified"] for r in items),
            }
        )
    for reference, field in (("baseline", "vs_baseline"), ("baseline-airflow", "vs_control")):
        matches = {(r["kind"], r["chunk_mib"]): r for r in rows if r["impl"] == reference}
        for row in rows:
            match = matches.get((row["kind"], row["chunk_mib"]))
            row[field] = row["mib_per_s_median"] / match["mib_per_s_median"] if match else None
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The Markdown table printed at the end and pasted into docs/BENCHMARKS.md."""
    headers = [
        "Scenario",
        "Chunk",
        "In flight",
        "MiB/s median (min-max)",
        "Wall s",
        "Client CPU s (user/sys)",
        "Sandbox CPU s",
        "Other CPU s",
        "Peak RSS MiB",
        "RSS before MiB",
        "Peak - before MiB",
        "vs baseline",
        "vs control",
        "Verified",
    ]
    table = [
        [
            f"{row['kind']} {IMPL_LABELS.get(row['impl'], row['impl'])}",
            f"{row['chunk_mib']} MiB" if row["chunk_mib"] else "as stored",
            str(row["max_parallel"]),
            f"{row['mib_per_s_median']:.0f} ({row['mib_per_s_min']:.0f}-{row['mib_per_s_max']:.0f})",
            f"{row['wall_s_median']:.2f}",
            f"{row['cpu_s_median']:.2f} ({row['cpu_user_s_median']:.2f}/{row['cpu_sys_s_median']:.2f})",
            f"{row['server_cpu_s_median']:.2f}",
            f"{row['other_cpu_s_median']:.2f}",
            f"{mib(row['peak_rss_max']):.0f}",
            f"{mib(row['rss_before_median']):.0f}",
            f"{mib(row['rss_increase_max']):.0f}",
            f"{row['vs_baseline']:.0%}" if row["vs_baseline"] is not None else "",
            f"{row['vs_control']:.0%}" if row["vs_control"] is not None else "",
            "yes" if row["verified"] else "NO",
        ]
        for row in rows
    ]
    return markdown_table(headers, table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line; the defaults are what ``make bench`` runs (1 GiB, 10 and 50 MiB chunks, 3 rounds)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024, help="source file size in MiB (default 1024)")
    parser.add_argument(
        "--chunk-mib", type=int, nargs="+", default=[10, 50], help="upload chunk sizes in MiB (default 10 50)"
    )
    parser.add_argument("--max-parallel", type=int, default=4, help="provider upload parallelism (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of every scenario (default 3)")
    parser.add_argument(
        "--tmp-dir",
        default=None,
        help="where the source, the sandbox's storage and downloads go (default: the system temp dir)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "transfer.json", help="results JSON path")
    parser.add_argument(
        "--quiet-wait", type=float, default=15.0, help="max seconds to wait for an idle machine before each run"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one measurement (spec file)
    args = parser.parse_args(argv)
    if not 1 <= args.size_mib <= 50 * 1024:
        parser.error("--size-mib must be between 1 and 51200")
    if not all(1 <= c <= 50 for c in args.chunk_mib):
        parser.error("--chunk-mib values must be between 1 and 50 (Anaplan's limits)")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be between 1 and 10")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario, print the table, write the JSON; non-zero if a transfer was not byte-exact."""
    args = parse_args(argv)
    if args.worker:
        worker(load_spec(args.worker))
        return 0
    started = time.monotonic()
    with workdir(args.tmp_dir, "sapplan-bench-transfer-") as base:
        measured = run_plan(args, base)
    rows = summarize(measured["runs"])
    elapsed = time.monotonic() - started
    table = render(rows)
    print()
    print(table)
    print(f"\nSource {args.size_mib} MiB, sha256 {measured['source_sha256'][:16]}..., total time {elapsed:.0f} s")
    payload = {
        "benchmark": "transfer",
        "machine": machine_info(),
        "parameters": {
            "size_mib": args.size_mib,
            "chunk_mib": args.chunk_mib,
            "max_parallel": args.max_parallel,
            "repeat": args.repeat,
            "tmp_dir": args.tmp_dir or "system temp",
        },
        "elapsed_s": elapsed,
        "summary": rows,
        "table_markdown": table,
        **measured,
    }
    write_results(args.output, payload)
    print(f"Results written to {args.output}")
    ok = all(row["verified"] for row in rows)
    if not ok:
        print("ERROR: at least one transfer did not reproduce the source byte for byte.", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
