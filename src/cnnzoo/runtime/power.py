"""Measured power and energy over a timed window: NVML on NVIDIA GPUs, RAPL on CPUs, or an honest "n/a".

Canziani, Paszke and Culurciello (2016, https://arxiv.org/abs/1605.07678) compare the architectures by
the power they draw while running forward. A meter here is started before the timed runs and stopped
after them; :meth:`stop` returns the mean watts and the joules of that window. Where the machine cannot
measure power, the meter says so and why (:class:`Unmeasurable`): a figure is measured or it is absent.

- NVIDIA GPU: the board power that NVML reports (``torch.cuda.power_draw``, which needs ``pynvml``,
  from the ``nvidia-ml-py`` package: ``pip install 'cnnzoo[power]'``), sampled in a background thread;
  joules = mean watts x window. NVML's reading is itself an average over its last sample period (1/6 s
  to 1 s by product), so a GPU row should be timed for a few seconds (``--time-budget 3``).
- CPU: the RAPL energy counters of ``/sys/class/powercap/intel-rapl:N/energy_uj`` (Intel, and AMD on
  Linux 5.8+), one per package, summed; the delta over the window, with counter wrap-around handled.
  RAPL counts the whole package: other processes running at the same time are included.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch

RAPL_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class Energy:
    """What a meter saw over one window: mean ``watts`` and ``joules``, or ``None`` and the ``note`` why."""

    watts: float | None
    joules: float | None
    note: str


class PowerMeter(Protocol):
    method: str

    def start(self) -> None: ...

    def stop(self) -> Energy: ...


def not_measurable(reason: str) -> str:
    """The text every power column shows where nothing could be measured."""
    return f"n/a (not measurable here: {reason})"


class Unmeasurable:
    """A meter for a machine that cannot measure power; ``stop`` says why instead of returning a figure."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.method = not_measurable(reason)

    def start(self) -> None:
        pass

    def stop(self) -> Energy:
        return Energy(None, None, self.method)


class RaplMeter:
    """Energy of the CPU packages from RAPL counters (microjoules, wrapping at ``max_energy_range_uj``)."""

    def __init__(self, zones: list[Path], clock: Callable[[], float] = time.perf_counter) -> None:
        self.zones = zones
        self.ranges = [_read_int(z / "max_energy_range_uj", default=2**32) for z in zones]
        self.clock = clock
        names = ", ".join(_zone_name(z) for z in zones)
        self.method = f"RAPL energy of {names} (whole package: other processes included)"
        self._start: tuple[float, list[int]] | None = None

    def read(self) -> list[int]:
        return [_read_int(z / "energy_uj") for z in self.zones]

    def start(self) -> None:
        self._start = (self.clock(), self.read())

    def stop(self) -> Energy:
        if self._start is None:
            raise RuntimeError("RaplMeter.stop() before start()")
        t1, e1 = self.clock(), self.read()
        t0, e0 = self._start
        micro = sum((b - a) % (r + 1) if b < a else b - a for a, b, r in zip(e0, e1, self.ranges))
        joules, seconds = micro / 1e6, t1 - t0
        return Energy(joules / seconds if seconds > 0 else None, joules, self.method)


def _read_int(path: Path, default: int | None = None) -> int:
    try:
        return int(path.read_text().strip())
    except FileNotFoundError:
        if default is None:
            raise
        return default


def _zone_name(zone: Path) -> str:
    try:
        return zone.joinpath("name").read_text().strip()
    except OSError:
        return zone.name


def rapl_meter(root: Path = RAPL_ROOT) -> RaplMeter | Unmeasurable:
    """A meter over the top-level RAPL zones (one per package) under ``root``, or why there is none.

    Sub-zones (``intel-rapl:0:0``, cores) are parts of their package and are left out; ``psys`` (the whole
    platform) already contains the packages, so it is used only where no package zone exists.
    """
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not zones:
        where = f"{root} has no intel-rapl:* zones" if root.is_dir() else f"there is no {root}"
        return Unmeasurable(f"no RAPL energy counters ({where}: a virtual machine, a container without "
                            "powercap, or a CPU without RAPL)")
    packages = [z for z in zones if _zone_name(z) != "psys"]
    zones = packages or zones
    try:
        for z in zones:
            _read_int(z / "energy_uj")
    except PermissionError:
        return Unmeasurable(f"RAPL counters are not readable ({zones[0] / 'energy_uj'}: permission denied; "
                            "Linux 5.10+ lets only root read them)")
    except (OSError, ValueError) as exc:
        return Unmeasurable(f"RAPL counters cannot be read ({type(exc).__name__}: {exc})")
    return RaplMeter(zones)


class SampledMeter:
    """Mean of ``read_watts()`` sampled every ``interval`` seconds in a background thread over the window.

    The window's first and last samples are taken in :meth:`start` and :meth:`stop` themselves, so a window
    shorter than ``interval`` still has two samples.
    """

    def __init__(self, read_watts: Callable[[], float], method: str, interval: float = 0.02,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.read_watts = read_watts
        self.method = method
        self.interval = interval
        self.clock = clock
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._samples.append(self.read_watts())

    def start(self) -> None:
        self._samples = [self.read_watts()]
        self._stop.clear()
        self._t0 = self.clock()
        self._thread = threading.Thread(target=self._loop, name="cnnzoo-power", daemon=True)
        self._thread.start()

    def stop(self) -> Energy:
        if self._thread is None:
            raise RuntimeError("SampledMeter.stop() before start()")
        seconds = self.clock() - self._t0
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._samples.append(self.read_watts())
        watts = sum(self._samples) / len(self._samples)
        return Energy(watts, watts * seconds, f"{self.method}, {len(self._samples)} samples")


def nvml_meter(device: torch.device, interval: float = 0.02) -> SampledMeter | Unmeasurable:
    """A meter of the GPU board power through NVML (``torch.cuda.power_draw``, milliwatts), or why there is none."""
    if not hasattr(torch.cuda, "power_draw"):
        return Unmeasurable(f"torch {torch.__version__} has no torch.cuda.power_draw")

    def read() -> float:
        return torch.cuda.power_draw(device) / 1000.0

    try:
        read()
    except ModuleNotFoundError:
        return Unmeasurable("pynvml is not installed: pip install 'cnnzoo[power]' (nvidia-ml-py)")
    except Exception as exc:  # no NVML library, or a GPU/driver that does not report power
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Unmeasurable(f"NVML cannot read the GPU's power ({reason})")
    return SampledMeter(read, f"NVML board power sampled every {interval * 1000:g} ms", interval)


def power_meter(device: torch.device, rapl_root: Path = RAPL_ROOT) -> PowerMeter:
    """The meter for ``device``: NVML for a CUDA GPU, RAPL for the CPU, else :class:`Unmeasurable`."""
    if device.type == "cuda":
        return nvml_meter(device)
    if device.type == "cpu":
        return rapl_meter(rapl_root)
    return Unmeasurable(f"no power reading for {device.type} devices")
