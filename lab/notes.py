"""Plain-language notes computed from a sweep's numbers."""

from __future__ import annotations

from collections import defaultdict


def notes(rows: list[dict]) -> list[str]:
    said: list[str] = []
    series = defaultdict(dict)
    for row in rows:
        series[(row["scheduler"], row["kernel"])][row["workers_requested"]] = row

    wrong = [r for r in rows if not r["correct"]]
    for row in wrong:
        said.append(f"WRONG SUM with {row['scheduler']}/{row['kernel']} at "
                    f"{row['workers_requested']} workers: an overflow or a lost part")

    cores = max((r["cores_available"] for r in rows if r["cores_available"]), default=0)
    if cores and any(r["workers_requested"] > cores for r in rows):
        said.append(f"only {cores} CPU cores here: speedup cannot pass {cores} on this machine")

    for (scheduler, kernel), by_workers in sorted(series.items()):
        parts = next(iter(by_workers.values()))["parts"]
        at_parts = by_workers.get(parts)
        for workers, row in sorted(by_workers.items()):
            if workers > parts and at_parts and row["compute_seconds"] >= 0.9 * at_parts["compute_seconds"]:
                said.append(f"{workers} workers are no faster than {parts} with {scheduler}/{kernel}: "
                            f"there are only {parts} parts")
                break
        best = max((r["speedup"] or 0 for r in by_workers.values()), default=0)
        many = [w for w in by_workers if w > 1]
        if scheduler == "threads" and many and best:
            if kernel == "python" and best < 1.3:
                said.append("the threaded scheduler does not speed up the pure-Python kernel "
                            f"(best {best:.2f}x): the GIL lets one thread run Python at a time")
            elif kernel == "numpy" and best >= 1.3:
                said.append(f"threads do speed up the NumPy kernel ({best:.2f}x): "
                            "NumPy releases the GIL")

    local = {(r["kernel"], r["workers_requested"]): r for r in rows if r["scheduler"] == "local"}
    for row in rows:
        twin = local.get((row["kernel"], row["workers_requested"]))
        if row["scheduler"] == "slurm" and twin and twin["compute_seconds"] > 0:
            ratio = row["compute_seconds"] / twin["compute_seconds"]
            said.append(f"SLURM workers took {ratio:.2f}x the compute time of local workers "
                        f"at {row['workers_requested']} workers ({row['kernel']})")
    return said
