"""``--amp auto`` and ``--channels-last`` left unset, decided by measurement on the machine at hand.

On CUDA, bf16 autocast (fp16 where the GPU lacks bf16) and channels_last. On a CPU that computes bf16
natively (AMX or AVX512-BF16, as PyTorch reports it), a few training steps of the run's own model are
timed in fp32 and in bf16 autocast with channels_last, on a copy of the model, and the faster is kept:
bf16 doubled ResNet-20's images/s on an AMX Xeon (issue 21), while a LeNet-5 is too small to gain. Elsewhere
fp32. The choice is cached per machine, architecture, input and batch size, and recorded in the run's
config, so a resumed run keeps it.
"""

from __future__ import annotations

import copy
import hashlib
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..base import AuxOutputs
from .config import TrainConfig

#: the batch the steps are timed at (at most the run's own)
MEASURE_BATCH = 64
TIMED_STEPS = 3


def resolve_amp(cfg: TrainConfig, model: nn.Module, input_shape: tuple[int, ...], device: torch.device,
                say: Callable[[str], None], cache_dir: Path | None = None, world: int = 1) -> TrainConfig:
    """``cfg`` with ``amp`` and ``channels_last`` decided where they were ``auto`` / unset.

    With several processes (``world``) nothing is measured on a CPU: each process would measure for
    itself and might choose otherwise; they all run fp32 unless told.
    """
    amp_auto, cl_auto = cfg.amp == "auto", cfg.channels_last is None
    if not (amp_auto or cl_auto):
        return cfg
    amp = cfg.amp
    channels_last = cfg.channels_last
    if device.type == "cuda":
        amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if amp_auto else amp
        channels_last = True if cl_auto else channels_last
    elif device.type == "cpu" and amp_auto and len(input_shape) == 3 and _cpu_bf16() and world == 1:
        amp, channels_last, line = _measured(cfg, model, input_shape, device, cl_auto, cache_dir)
        say(line)
    else:
        amp = "off" if amp_auto else amp
        channels_last = False if cl_auto else channels_last
    return TrainConfig.from_dict({**cfg.to_dict(), "amp": amp, "channels_last": bool(channels_last)})


def _cpu_bf16() -> bool:
    from ..runtime.precision import machine

    return machine().cpu_bf16


def _measured(cfg: TrainConfig, model: nn.Module, input_shape: tuple[int, ...], device: torch.device,
              cl_auto: bool, cache_dir: Path | None) -> tuple[str, bool, str]:
    from ..runtime.cache import architecture_key, cache_home, read_choice, write_choice
    from ..runtime.precision import machine

    batch = min(cfg.batch_size, MEASURE_BATCH)
    options = [("off", False if cl_auto else cfg.channels_last), ("bf16", True if cl_auto else cfg.channels_last)]
    h = architecture_key(model, input_shape)
    h.update(f"train|{batch}|{options}|{machine().line()}".encode())
    path = (cache_dir or cache_home().parent / "amp") / f"{hashlib.sha256(h.digest()).hexdigest()[:20]}.json"
    cached = read_choice(path)
    if cached and "amp" in cached:
        return cached["amp"], cached["channels_last"], f"amp auto: {cached['text']}, cached"
    rates = _rates(model, input_shape, batch, device, options)
    (amp, channels_last) = max(rates, key=rates.__getitem__)
    name = lambda o: f"{'bf16' if o[0] == 'bf16' else 'fp32'}{' + channels_last' if o[1] else ''}"  # noqa: E731
    other = min(rates, key=rates.__getitem__)
    text = f"{name((amp, channels_last))} ({rates[(amp, channels_last)]:,.0f} img/s against " \
           f"{name(other)}'s {rates[other]:,.0f} in training steps)"
    write_choice(path, {"amp": amp, "channels_last": channels_last, "text": text,
                        "rates": {name(o): r for o, r in rates.items()}})
    return amp, channels_last, f"amp auto: {text}"


def _rates(model: nn.Module, input_shape: tuple[int, ...], batch: int, device: torch.device,
           options: list[tuple[str, bool]]) -> dict[tuple[str, bool], float]:
    """Images/s of each option's training steps: all warmed up first, then timed in alternation (the
    fastest step of each), so a change in the machine's load hits every option alike."""
    steps = {option: _step(model, input_shape, batch, device, *option) for option in options}
    for step in steps.values():
        step()
    best = dict.fromkeys(options, float("inf"))
    for _ in range(TIMED_STEPS):
        for option, step in steps.items():
            t0 = time.perf_counter()
            step()
            best[option] = min(best[option], time.perf_counter() - t0)
    return {option: batch / t for option, t in best.items()}


def _rate(model: nn.Module, input_shape: tuple[int, ...], batch: int, device: torch.device, amp: str,
          channels_last: bool) -> float:
    """Images/s of SGD training steps of a copy of ``model`` at one option (benchmarks/amp_training.py)."""
    return _rates(model, input_shape, batch, device, [(amp, channels_last)])[(amp, channels_last)]


def _step(model: nn.Module, input_shape: tuple[int, ...], batch: int, device: torch.device, amp: str,
          channels_last: bool) -> Callable[[], None]:
    """One SGD training step (learning rate 0) of a copy of ``model``, on a fixed random batch."""
    trial = copy.deepcopy(model).to(device).train()
    if channels_last:
        trial.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD([p for p in trial.parameters() if p.requires_grad] or [torch.zeros(1)], lr=0.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *input_shape, generator=g).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, trial.num_classes, (batch,), generator=g).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            out = trial(x)
            logits = out.logits if isinstance(out, AuxOutputs) else out
            loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        optimizer.step()

    return step


__all__ = ["resolve_amp"]
