"""Builds contestants and drives the workloads; never lets a contestant's failure stop the run."""

from __future__ import annotations

import gc
import os
import traceback

from .common import Unavailable, he_init, median
from .contestants import make
from .workloads import Timed, time_limit


class Harness:
    def __init__(self, settings, log):
        self.S = settings
        self.log = log
        self._init: dict = {}

    def init_for(self, sizes):
        """The shared host He init for ``sizes`` (float64, seeded), made once."""
        key = tuple(sizes)
        if key not in self._init:
            self._init[key] = he_init(sizes, self.S.seed)
        return self._init[key]

    @staticmethod
    def base_row(name, workload, dtype, device) -> dict:
        return {
            "contestant": name,
            "family": "polynn" if name.startswith("polynn") else "peer",
            "workload": workload,
            "dtype": dtype,
            "device": device,
        }

    def build(self, name, sizes, dtype, device, workload, lr=None):
        """(contestant, None) or (None, row saying why it is unavailable)."""
        S = self.S
        lr = S.lr if lr is None else lr
        try:
            return make(name, sizes, dtype, lr=lr, l2=S.l2, device=device, seed=S.seed), None
        except Unavailable as e:
            why = f"unavailable: {e}"
        except Exception as e:  # noqa: BLE001
            why = f"unavailable: {type(e).__name__}: {e}"
        self.log(f"    {name:13s} {dtype}: {why}")
        return None, {**self.base_row(name, workload, dtype, device), "status": why}

    def _error(self, c, workload, e) -> dict:
        tb = traceback.format_exc(limit=-3)
        self.log(f"    {c.name:13s} {c.dtype}: error: {type(e).__name__}: {e}\n{tb}")
        return {
            **self.base_row(c.name, workload, c.dtype, c.device),
            "status": f"error: {type(e).__name__}: {e}",
        }

    def timed(self, w_factory, names, sizes, dtype, device, repeats: int, lr=None) -> list[dict]:
        """Run a ``Timed`` workload for every contestant in ``names``, interleaved: everyone's
        warm-up, then repeat 1 of everyone, repeat 2 of everyone ... (the order rotates each
        round). ``w_factory(init)`` makes the workload object; ``lr`` defaults to the settings'.
        One row per contestant, in order."""
        w: Timed = w_factory(self.init_for(sizes))
        rows: dict[str, dict] = {}
        alive = []  # [name, contestant, first, times, load averages]
        for name in names:
            c, why = self.build(name, sizes, dtype, device, w.workload, lr)
            if c is None:
                rows[name] = why
                continue
            try:
                with time_limit(self.S.timeout_s):
                    w.prepare(c)
                    first = w.warmup(c)
                alive.append([name, c, first, [], []])
            except Exception as e:  # noqa: BLE001
                rows[name] = self._error(c, w.workload, e)
                del c
        for r in range(repeats):
            k = r % len(alive) if alive else 0
            for entry in alive[k:] + alive[:k]:
                name, c = entry[0], entry[1]
                if name in rows:  # failed in an earlier round
                    continue
                try:
                    with time_limit(self.S.timeout_s):
                        entry[3].append(w.once(c))
                    entry[4].append(round(os.getloadavg()[0], 2))
                except Exception as e:  # noqa: BLE001
                    rows[name] = self._error(c, w.workload, e)
        for name, c, first, times, loads in alive:
            if name in rows:
                continue
            try:
                rows[name] = w.finish(c, first, times)
                # the 1-minute load average after each timed run: the load the times were taken at
                rows[name]["loadavg_runs"] = loads
                rows[name]["loadavg_1m"] = median(loads) if loads else rows[name]["loadavg_1m"]
            except Exception as e:  # noqa: BLE001
                rows[name] = self._error(c, w.workload, e)
        alive.clear()
        gc.collect()
        return [rows[n] for n in names]

    def each(self, fn, names, sizes, dtype, device, workload, lr=None) -> list[dict]:
        """Apply ``fn(c, init) -> row`` to each contestant in turn (e.g. the memory runs)."""
        out = []
        for name in names:
            c, why = self.build(name, sizes, dtype, device, workload, lr)
            if c is None:
                out.append(why)
                continue
            try:
                with time_limit(self.S.timeout_s):
                    out.append(fn(c, self.init_for(sizes)))
            except Exception as e:  # noqa: BLE001
                out.append(self._error(c, workload, e))
            finally:
                del c
                gc.collect()
        return out
