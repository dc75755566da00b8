"""Workload 4: a GPU, 4096-4096-4096-10, batch 8192, float32 and bfloat16, on CuPy and JAX.

Runs only when a GPU is usable; otherwise the run records and prints
"skipped: no usable GPU (<reason per library>)" and no figure at all. ``--gpu-dry-run`` walks the
same code on the CPU with small shapes to check that it works; those rows are labelled
"gpu-dryrun" and never count as GPU results.
"""

from __future__ import annotations

from .ceiling import measure_ceilings
from .common import random_classification


def probe() -> tuple[dict[str, str], list[str]]:
    """({lib: device description} for each library that has a usable GPU, [reason per library])."""
    usable: dict[str, str] = {}
    reasons: list[str] = []
    try:
        import cupy

        try:
            n = cupy.cuda.runtime.getDeviceCount()
            if n > 0 and cupy.cuda.is_available():
                cupy.zeros(1).sum().item()  # the first array is where a broken install fails
                usable["cupy"] = f"{n} CUDA device(s)"
            else:
                reasons.append("cupy: no CUDA device")
        except Exception as e:  # noqa: BLE001
            reasons.append(f"cupy: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    except Exception as e:  # noqa: BLE001
        reasons.append(f"cupy not importable ({type(e).__name__})")
    try:
        import jax

        try:
            devs = jax.devices("gpu")
            usable["jax"] = ", ".join(str(d) for d in devs)
        except Exception as e:  # noqa: BLE001
            msg = str(e).splitlines()[0] if str(e) else ""
            reasons.append(f"jax: no gpu backend ({type(e).__name__}: {msg[:120]})")
    except Exception as e:  # noqa: BLE001
        reasons.append(f"jax not importable ({type(e).__name__})")
    try:
        import torch

        if torch.cuda.is_available():
            usable["torch"] = torch.cuda.get_device_name(0)
        else:
            reasons.append(f"torch {torch.__version__}: CUDA not available")
    except Exception as e:  # noqa: BLE001
        reasons.append(f"torch not importable ({type(e).__name__})")
    return usable, reasons


GPU_CONTESTANTS = ("numpy-hand", "jax-jit", "jax-scan", "torch", "polynn-cupy", "polynn-jax")


def run_gpu(settings, harness, log, dry_run: bool = False) -> dict:
    """Run workload 4 (or its CPU dry run) through ``harness`` (the runner's ``Harness``)."""
    from .workloads import PerStep

    S = settings
    usable, reasons = probe()
    if not usable and not dry_run:
        status = f"skipped: no usable GPU ({'; '.join(reasons)})"
        log("  " + status)
        return {"status": status, "rows": [], "ceilings": None, "usable": usable}
    if dry_run:
        device, workload = "cpu", "gpu-dryrun"
        sizes, batch, ceil_n = [256, 256, 256, 10], 512, 512
        libs = ["numpy", "jax", "torch"]
        log("  GPU DRY RUN on the CPU with small shapes: checks the code path, NOT a GPU result")
    else:
        device, workload = "gpu", "gpu"
        sizes, batch, ceil_n = [4096, 4096, 4096, 10], S.gpu_batch, S.gpu_ceiling_n
        libs = [lib for lib in ("cupy", "jax", "torch") if lib in usable]
        log(f"  usable GPU libraries: {usable}")
    ceilings = measure_ceilings(
        libs, ("float32", "bfloat16"), ceil_n, S.ceiling_rounds, device, log
    )
    X, y = random_classification(S.seed + 4, batch, sizes[0], sizes[-1], "float32", kind="normal")
    rows = []
    names = [n for n in GPU_CONTESTANTS if not S.contestants or n in S.contestants]
    for dtype in ("float32", "bfloat16"):
        log(f"  {workload} {dtype}: {sizes}, batch {batch}")
        rows += harness.timed(
            lambda init: PerStep(init, X, y, S.l2, log, S.gpu_steps, workload),
            names, sizes, dtype, device, S.gpu_repeats, lr=S.lr_large,
        )  # fmt: skip
    return {
        "status": "dry run on the CPU (not a GPU result)" if dry_run else "ran",
        "rows": rows,
        "ceilings": ceilings,
        "usable": usable,
        "sizes": sizes,
        "batch": batch,
        "reasons_unusable": reasons,
    }
