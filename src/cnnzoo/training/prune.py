"""Structured pruning (``cnnzoo prune``): whole channels removed with Torch-Pruning, fine-tuned by the run's recipe.

Torch-Pruning (Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023,
https://arxiv.org/abs/2301.12900) builds the dependency graph of the network — the channels a residual add,
a concatenation (Inception, DenseNet) or a depthwise convolution ties together — and removes each group of
coupled channels at once, so the result is a smaller dense network that is faster on every runtime (masks
are not). Channels are ranked by the L1 or L2 norm of their weights (Li et al. 2017) or by the first-order
Taylor estimate of the loss change (Molchanov et al. 2019), uniformly across layers; the classifier keeps
its classes.

The MACs target is reached in ``steps`` rounds: each narrows every layer by 1 % of its channels at a time
until the MACs, counted by cnnzoo's analyzer (exact), are at that round's share of the way to the target,
then fine-tunes for ``epochs`` with the original run's recipe through :func:`cnnzoo.training.fit.fit` —
with ``distill``, on the soft labels of the unpruned network as well (knowledge distillation with the original
as its own teacher, as NNCF's pruning with a distillation loss does: the pruned network learns back the
function it lost, not only the labels). With ``sparsity_epochs``, the network is first trained that long with
DepGraph's group-norm regulariser (Torch-Pruning's ``GroupNormPruner``, the method behind its ResNet-56 CIFAR-10
figure), which drives the weights of each group's weakest channels towards zero, so that the cut removes channels
the network has already learned to do without. The pruned network is recorded as a width map (:mod:`cnnzoo.widths`)
in ``model_args``, so its files load wherever a model does.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CnnzooError
from ..registry import create_model
from ..weights import atomic_write
from ..widths import width_map
from .distill import load_teacher, say_teacher_quality

IMPORTANCES = ("l1", "l2", "taylor")
#: each pruning round narrows every layer by 1 % of its channels at a time, to at most 95 % removed
RATIO_STEP, MAX_RATIO = 0.01, 0.95
#: training images whose batch norm statistics the pruned network is given before fine-tuning
RECALIBRATION_IMAGES = 1024
#: Torch-Pruning's ResNet-56 CIFAR-10 sparsity training: 100 epochs at lr 0.01 with the group-norm regulariser at
#: 5e-4; ``--sparsity-epochs E`` spreads the same total over E epochs (see :func:`default_sparsity_reg`)
SPARSITY_REG, SPARSITY_EPOCHS = 5e-4, 100



class PruneError(CnnzooError):
    """A model that cannot be pruned, or a target that cannot be reached."""


def check_prunable(model: nn.Module) -> None:
    """Refuse, in one line, a model with a layer that Torch-Pruning's dependency graph cannot follow.

    Such a layer says why in its ``unprunable`` attribute (ResNet's option-A shortcut). Every family was
    pruned on a small input to find them; tests/test_prune.py prunes each family and checks this refusal.
    """
    why = next((m.unprunable for m in model.modules() if getattr(m, "unprunable", None)), None)
    if why:
        raise PruneError(f"{model.model_name} cannot be pruned: {why}")


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """The exact MACs of one image through ``model`` (cnnzoo's analyzer)."""
    from ..analysis import analyze

    return analyze(model, input_shape).totals.macs


def unpruned_args(model: nn.Module) -> dict[str, Any]:
    """The builder's arguments of ``model`` without its width map: the network before any pruning."""
    return {k: v for k, v in (model.model_args or {}).items() if k != "widths"}


def _importance(kind: str):
    import torch_pruning as tp

    if kind == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if kind == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if kind == "taylor":
        return tp.importance.GroupTaylorImportance()
    raise PruneError(f"unknown --importance {kind!r}; use {', '.join(IMPORTANCES)}")


def _torch_pruning():
    try:
        import torch_pruning
    except ImportError:
        raise PruneError("pruning needs Torch-Pruning: pip install 'cnnzoo[lightweight]'") from None
    return torch_pruning


def _pruning_graph(pruner: Callable[..., Any], model: nn.Module, input_shape: tuple[int, ...], **kwargs: Any):
    """A Torch-Pruning pruner of ``model`` (traced in eval mode, so that the example input leaves the batch norm
    statistics alone), its classifiers kept whole; a tracer failing on an architecture is refused in one line."""
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    example = torch.zeros(1, *input_shape, device=param.device)
    ignored = [model.get_submodule(n) for n in (model.classifier_name, *model.aux_classifier_names)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Torch-Pruning's notes on unwrapped parameters and the like
            return pruner(model, example, ignored_layers=ignored, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Torch-Pruning's tracer failing on an architecture
        raise PruneError(f"{model.model_name} cannot be pruned: Torch-Pruning could not trace its channel "
                         f"dependencies ({type(exc).__name__}: {str(exc)[:120]})") from exc
    finally:
        model.train(was_training)


def default_sparsity_reg(epochs: int) -> float:
    """The regularisation of ``epochs`` of sparsity training: Torch-Pruning's 5e-4 over 100 epochs, spread over
    ``epochs`` (1.67e-2 for 3). At lr 0.01 and 117 steps an epoch, 3 epochs at its own 5e-4 would shrink the
    weakest channel of a group by 3 % (leaving the network as it was), 3 at 1.67e-2 to 39 % (before the loss's own
    gradient pulls back the channels it needs)."""
    return SPARSITY_REG * SPARSITY_EPOCHS / epochs


def sparsity_regularizer(input_shape: tuple[int, ...], reg: float = SPARSITY_REG
                         ) -> Callable[[nn.Module], Callable[[], None]]:
    """For :func:`cnnzoo.training.fit.fit`'s ``regularize``: given the network being trained, the function that
    adds DepGraph's group-norm regularisation to its gradients after each backward pass.

    Fang et al. 2023 (https://arxiv.org/abs/2301.12900), section 3.3, as Torch-Pruning's ``GroupNormPruner``
    implements it: every weight of a group of coupled channels (a convolution's filter, the next layer's input
    slice, the batch norm between, the other layers a residual add ties to it) is decayed by ``reg`` times a factor
    from 1 for the group's strongest channel to 16 for its weakest (by the L2 norm over the whole group), so the
    weak channels of each group fade while the strong ones keep their weights.
    """
    tp = _torch_pruning()

    def build(model: nn.Module) -> Callable[[], None]:
        check_prunable(model)
        pruner = _pruning_graph(tp.pruner.GroupNormPruner, model, input_shape,
                                importance=tp.importance.GroupMagnitudeImportance(p=2), reg=reg)
        return lambda: pruner.regularize(model)

    return build


def prune_to(model: nn.Module, input_shape: tuple[int, ...], target_macs: int, importance: str = "l1",
             batch: tuple[Tensor, Tensor] | None = None, round_to: int | None = None,
             global_pruning: bool = False, trace: list[int] | None = None) -> int:
    """Remove channels of ``model`` (in place) until its MACs are at most ``target_macs``; returns them.

    ``batch`` (preprocessed images and labels) gives the gradients of ``taylor`` importance. ``round_to``
    (Torch-Pruning's own option) keeps every pruned layer's channels a multiple of it: a layer narrowed to 8,
    24, 48 runs on a CPU's vector units without padding, where 11, 22, 45 do not (the pruned ``resnet56_cifar``
    of docs/lightweight.md). The width a step asks for is rounded to the *nearest* multiple (see
    :func:`nearest_multiple`), never below one multiple; a layer that cannot keep a multiple (LeNet-5's 6) is
    not pruned.

    ``global_pruning`` (Torch-Pruning's): the channels are ranked across all layers at once, so each layer loses
    what its channels' importance says rather than the same share (never more than 95 % of a layer); otherwise
    every layer is narrowed by the same share.

    ``trace``, where given, receives the MACs before the first step and after each.
    """
    tp = _torch_pruning()
    name = model.model_name
    check_prunable(model)
    if importance == "taylor" and batch is None:
        raise PruneError("taylor importance needs a batch of images for its gradients")
    pruner = _pruning_graph(tp.pruner.MetaPruner, model, input_shape, importance=_importance(importance),
                            pruning_ratio=MAX_RATIO, iterative_steps=round(MAX_RATIO / RATIO_STEP),
                            round_to=round_to, global_pruning=global_pruning,
                            max_pruning_ratio=MAX_RATIO if global_pruning else 1.0)
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Torch-Pruning's notes on unwrapped parameters and the like
        if round_to:
            pruner._round_to = nearest_multiple  # noqa: SLF001 - see nearest_multiple
        macs = count_macs(model, input_shape)
        trace = trace if trace is not None else []
        trace.append(macs)
        for _ in range(pruner.iterative_steps):
            if macs <= target_macs:
                break
            if importance == "taylor":
                model.zero_grad()
                x, y = batch
                out = model(x)
                F.cross_entropy(out.logits if hasattr(out, "logits") else out, y).backward()
            pruner.step()
            macs = count_macs(model, input_shape)
            trace.append(macs)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    if macs > target_macs:
        raise PruneError(f"{name} reached {macs:,} MACs with {MAX_RATIO:.0%} of its channels removed, above the "
                         f"target {target_macs:,}; ask for a larger --macs fraction")
    return macs


def recalibrate_batchnorm(model: nn.Module, batches: Iterable[Tensor]) -> None:
    """Re-estimate every batch norm's running mean and variance on ``batches`` of preprocessed images, in place.

    Removing channels changes what each later layer sees, so the statistics a batch norm kept from training no
    longer describe its input: in eval mode the pruned network can be at chance although its weights are fine
    (a ``resnet56_cifar`` cut to 21 % of its MACs scored 10 % on the test images after 16 fine-tuning steps that
    reached 54 % on their own batches). A pass over a few batches in training mode, without gradients and with
    a cumulative average (``momentum=None``), gives them back their true values before any fine-tuning.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    device = next(model.parameters()).device
    with torch.no_grad():
        for x in batches:
            model(x.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


def nearest_multiple(n_pruned: int, current: int, round_to: int) -> int:
    """How many of ``current`` channels to remove so that the width a step asks for, ``current - n_pruned``, is
    rounded to the nearest multiple of ``round_to`` (half up), at least one multiple.

    Torch-Pruning 1.6 documents ``round_to`` as rounding to the nearest multiple but rounds *down*
    (``BasePruner._round_to``), and its steps ask each layer for a width just under its current one: so the
    first 1 % step took every 16-channel layer to 8 and every 24-channel one to 16. On EfficientNet-Lite0, whose
    first stages are 16 and 24 wide, that halved them at once and left a network at chance (12.5 % top-1 on
    Fashion-MNIST at 30 % fewer MACs), and on ``resnet56_cifar`` it made ``--macs 0.25`` land at 15 %. Rounded to
    the nearest multiple, a layer narrows when the width asked for is nearer the next multiple down.
    """
    asked = current - n_pruned
    kept = max(round_to, (asked + round_to // 2) // round_to * round_to)
    return max(0, current - kept)


def record(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, dict[str, int]]:
    """The width map of the pruned ``model``, checked: the network it rebuilds computes the same outputs."""
    name = model.model_name
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original = create_model(name, **unpruned_args(model))
    try:
        widths = width_map(original, model)
    except ValueError as exc:
        raise PruneError(f"{name} cannot be pruned: {exc}") from None
    rebuilt = create_model(name, **unpruned_args(model), widths=widths)
    rebuilt.load_state_dict(model.state_dict())
    device = next(model.parameters()).device
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    was = model.training
    with torch.no_grad():
        same = torch.allclose(model.eval()(x), rebuilt.to(device).eval()(x), rtol=1e-4, atol=1e-5)
    model.train(was)
    if not same:
        raise PruneError(f"{name} cannot be pruned: the network rebuilt from its recorded widths computes "
                         "other outputs than the pruned one")
    model.model_args = {**unpruned_args(model), "widths": widths}
    return widths


# ---------------------------------------------------------------------------------------------- the command

def macs_targets(start: int, original: int, fraction: float, steps: int) -> list[int]:
    """Each round's MACs target: an equal share of the way from ``start`` to ``fraction`` of ``original``."""
    goal = fraction * original
    return [int(start - (start - goal) * k / steps) for k in range(1, steps + 1)]


def prune_run(path: Path, fraction: float, *, importance: str = "l1", steps: int = 1, epochs: int = 1,
              lr: float | None = None, round_to: int | None = None, seed: int | None = None,
              global_pruning: bool = False, distill: bool = False, teacher: Path | None = None,
              temperature: float = 4.0, alpha: float = 0.9, sparsity_epochs: int = 0,
              sparsity_reg: float | None = None, data: str | None = None,
              data_root: str | None = None, out: str | None = None,
              resume: bool = False, overwrite: bool = False, limit_train: int | None = None,
              limit_test: int | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Prune the trained model of checkpoint ``path`` to ``fraction`` of its MACs in ``steps`` rounds, each
    fine-tuned ``epochs`` epochs with the run's own recipe (at ``lr``: by default :func:`default_lr`, and
    ``seed``: by default the run's), every pruned layer's channels a multiple of ``round_to`` where given, the
    channels ranked across all layers where ``global_pruning`` (see :func:`prune_to`). ``distill`` (or a
    ``teacher`` checkpoint): each round is fine-tuned by knowledge distillation at ``temperature`` and ``alpha``
    (:mod:`cnnzoo.training.distill`) from ``teacher``, by default the network of ``path`` as it was before the
    cut; its logits are cached, so augmentation is off. ``sparsity_epochs``: before the first cut, the network is
    trained that long (at the fine-tuning rate, distilled where the rounds are) with the group-norm regulariser of
    :func:`sparsity_regularizer` at ``sparsity_reg``, in ``sparse/``, and the rounds prune what it learned.

    The folder holds ``sparse/`` (with ``sparsity_epochs``), ``step-K/`` (each an ordinary training run,
    resumable), ``pruned-K.pt`` (round K's pruned weights before fine-tuning), and at the end ``best.pt`` (the
    last round's fine-tuned weights) and ``report.json``. Returns the report.
    """
    from . import runfolder
    from .checkpoint import load_checkpoint, load_run_checkpoint, save_checkpoint
    from .fit import fit
    from .outputs import write_json

    if not 0 < fraction < 1:
        raise PruneError(f"--macs {fraction:g} is not a fraction of the model's MACs in (0, 1); e.g. --macs 0.5 "
                         "keeps half")
    if importance not in IMPORTANCES:
        raise PruneError(f"unknown --importance {importance!r}; use {', '.join(IMPORTANCES)}")
    if not 0 <= alpha <= 1:
        raise PruneError(f"--alpha {alpha:g} is outside [0, 1]: it weighs the teacher's term against the labels'")
    if sparsity_reg is not None and not sparsity_epochs:
        raise PruneError("--sparsity-reg weighs the regulariser of the sparsity training: give --sparsity-epochs E "
                         "as well")
    if sparsity_epochs and sparsity_reg is None:
        sparsity_reg = default_sparsity_reg(sparsity_epochs)
    ckpt = load_run_checkpoint(path)
    name = ckpt["model_name"]
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_prunable(create_model(name, **ckpt["model_args"]))
    config = ckpt["config"]
    base = runfolder.default_base(name, (data or config["data"]) + "-pruned")
    claim = runfolder.claim(out, base, resume, overwrite, parts=("sparse", "step-*", "pruned-*.pt"))
    folder = claim.out
    try:
        tutor = load_teacher(Path(teacher or path), temperature, alpha) if distill or teacher else None
        model = create_model(name, **ckpt["model_args"])
        model.load_state_dict(ckpt["model"])
        p = ckpt["pipeline"]
        input_shape = (model.in_chans, *(2 * (p["size"] or _data_side(config, data, data_root),)))
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            original_macs = count_macs(create_model(name, **unpruned_args(model)), input_shape)
        start_macs = count_macs(model, input_shape)
        targets = macs_targets(start_macs, original_macs, fraction, steps)
        train = {**config, "model": name, "data": data or config["data"], "epochs": epochs, "progress": False,
                 "lr": lr if lr is not None else default_lr(config), "warmup_epochs": 0.0,
                 **({"data_root": data_root} if data_root else {}),
                 "seed": seed if seed is not None else config.get("seed", 0),
                 **({"limit_train": limit_train} if limit_train else {}),
                 **({"limit_test": limit_test} if limit_test else {}),
                 **({"augment": ()} if tutor else {})}
        log(f"cnnzoo prune: {name} from {path}, {start_macs:,} MACs ({start_macs / original_macs:.1%} of the "
            f"unpruned network's {original_macs:,}) to {fraction:.0%} in {steps} round(s) of "
            f"{'global ' if global_pruning else ''}{importance} pruning"
            f"{f' (channels in multiples of {round_to})' if round_to else ''}, "
            f"each fine-tuned {epochs} epoch(s) at lr {train['lr']:g} (recipe {config.get('recipe')}, seed "
            f"{train['seed']})")
        if tutor:
            log(f"fine-tuning distilled from {tutor.source} ({tutor.model.model_name}): T {temperature:g}, "
                f"alpha {alpha:g}"
                + (f"; augmentation off (was {', '.join(config['augment'])})" if config.get("augment") else ""))
            say_teacher_quality(tutor, tutor.source, log)
        current, sparse = ckpt, None
        if sparsity_epochs:
            sparse_dir = folder / "sparse"
            if (sparse_dir / "best.pt").is_file():
                log(f"sparsity training: done before ({sparse_dir / 'best.pt'})")
                report = json.loads((sparse_dir / "report.json").read_text())
            else:
                log(f"sparsity training: {sparsity_epochs} epoch(s) with the group-norm regulariser at "
                    f"{sparsity_reg:g} (DepGraph's, Torch-Pruning's GroupNormPruner) in {sparse_dir}")
                cfg = _stage_config({**train, "epochs": sparsity_epochs}, sparse_dir, path, ckpt["model_args"])
                again = resume and (sparse_dir / "last.pt").is_file()
                report = fit(cfg, resume=again, overwrite=not again, log=lambda s: log(f"  sparsity: {s}"),
                             init=ckpt["model"], teacher=tutor,
                             regularize=sparsity_regularizer(input_shape, sparsity_reg), keep_last=True)
            current = load_checkpoint(sparse_dir / "best.pt")
            sparse = {"epochs": sparsity_epochs, "reg": sparsity_reg, "test_top1": report["test_top1"]}
        rounds = []
        for k, target in enumerate(targets, 1):
            step_dir = folder / f"step-{k}"
            if (step_dir / "best.pt").is_file():
                current = load_checkpoint(step_dir / "best.pt")
                log(f"round {k}: done before ({step_dir / 'best.pt'})")
                rounds.append(json.loads((step_dir / "report.json").read_text()) | {"round": k})
                continue
            pruned_file = folder / f"pruned-{k}.pt"
            again = resume and (step_dir / "last.pt").is_file()
            if pruned_file.is_file():
                pruned = load_checkpoint(pruned_file)
            else:
                model = create_model(name, **current["model_args"])
                model.load_state_dict(current["model"])
                batch = _taylor_batch(config, data, data_root, current["pipeline"]) if importance == "taylor" else None
                trace: list[int] = []
                macs = prune_to(model, input_shape, target, importance, batch, round_to, global_pruning, trace)
                recalibrate_batchnorm(model, _training_batches(config, data, data_root, current["pipeline"],
                                                               RECALIBRATION_IMAGES))
                widths = record(model, input_shape)
                pruned = {**{k2: current[k2] for k2 in ("config", "pipeline", "classes") if k2 in current},
                          "model_name": name, "model_args": model.model_args, "model": model.state_dict(),
                          "macs": macs, "epoch": 0}
                save_checkpoint(pruned_file, pruned)
                log(f"round {k}: {macs:,} MACs ({macs / original_macs:.1%}), {len(widths)} layers narrowed; "
                    f"fine-tuning in {step_dir}")
                if round_to and macs < 0.9 * target:
                    log(f"round {k}: note: with channels in multiples of {round_to}, one step went from "
                        f"{trace[-2] / original_macs:.2%} of the MACs to {macs / original_macs:.2%}, past this round's "
                        f"target ({target / original_macs:.2%}): layers of the same width cross a multiple together, "
                        f"and {round_to} channels of a narrow layer are a large share of it; a smaller --round-to"
                        f"{', or fewer --steps,' if steps > 1 else ''} lands closer")
            cfg = _stage_config(train, step_dir, pruned_file, pruned["model_args"])
            report = fit(cfg, resume=again, overwrite=not again, log=lambda s, k=k: log(f"  round {k}: {s}"),
                         init=pruned["model"], teacher=tutor)
            current = load_checkpoint(step_dir / "best.pt")
            rounds.append({"round": k, **{key: report[key] for key in ("test_top1", "best_val_acc")}})
        final = create_model(name, **current["model_args"])
        macs = count_macs(final, input_shape)
        params = sum(p.numel() for p in final.parameters())
        atomic_write(folder / "best.pt", lambda tmp: shutil.copyfile(folder / f"step-{steps}" / "best.pt", tmp))
        summary = {"model": name, "source": str(path), "importance": importance, "round_to": round_to,
                   "global_pruning": global_pruning,
                   "distill": {"teacher": tutor.source, "temperature": temperature, "alpha": alpha} if tutor else None,
                   "sparsity": sparse,
                   "seed": train["seed"],
                   "macs_fraction_asked": fraction,
                   "macs_original": original_macs, "macs_start": start_macs, "macs": macs,
                   "macs_fraction": macs / original_macs, "params": params, "rounds": rounds,
                   "test_top1": rounds[-1]["test_top1"], "widths": current["model_args"]["widths"]}
        write_json(folder / "report.json", summary)
        log(f"pruned {name}: {macs:,} MACs ({macs / original_macs:.1%} of {original_macs:,}), {params:,} parameters; "
            f"test top-1 {summary['test_top1']:.4f}; weights: {folder / 'best.pt'} (loads like any checkpoint: "
            f"cnnzoo summary/eval/predict/export {folder / 'best.pt'})")
        return summary
    finally:
        claim.release()


def default_lr(config: dict[str, Any]) -> float:
    """The fine-tuning rate after a cut: a tenth of a trained run's (Torch-Pruning's CIFAR fine-tuning uses 0.01
    against training's 0.1), or a fine-tuned run's own, which is a fine-tuning rate already: its tenth left a
    pruned EfficientNet-Lite0 at 67 % validation accuracy after an epoch, its own at 82 %."""
    return config["lr"] if config.get("weights") else config["lr"] / 10


def _from_pruned(config: dict[str, Any], pruned_file: Path) -> dict[str, Any]:
    """A fine-tuned run (``cnnzoo finetune``) is fine-tuned again from its pruned weights, not its pretrained ones:
    the pruned file is the run's ``weights`` (so the pipeline, resize and normalisation, stay the pretrained
    weights'), and every layer trains (``full``, no classifier-only epochs): the pruned layers are the ones that
    need it, whatever strategy the run chose. A run trained from scratch changes nothing."""
    if not config.get("weights"):
        return {}
    return {"weights": str(pruned_file), "strategy": "full", "head_epochs": 0, "reinit": False}


def _stage_config(train: dict[str, Any], out: Path, weights: Path, model_args: dict[str, Any]):
    """The training config of one stage of a pruning run (``train``: the run's config with the pruning run's
    changes) in ``out``, starting from the network of ``weights`` whose arguments are ``model_args`` (its width
    map, where it has been pruned)."""
    from .config import TrainConfig

    widths = {"widths": model_args["widths"]} if "widths" in model_args else {}
    return TrainConfig.from_dict({**train, "out": str(out),
                                  **_from_pruned(train, weights),
                                  "model_kwargs": {**train.get("model_kwargs", {}), **widths}})


def _on_data(config: dict[str, Any], data: str | None, data_root: str | None):
    """The run's config on ``data`` (default: its own) in ``data_root``."""
    from .config import TrainConfig

    return TrainConfig.from_dict({**config, "data": data or config["data"],
                                  **({"data_root": data_root} if data_root else {})})


def _data_side(config: dict[str, Any], data: str | None, data_root: str | None) -> int:
    from .fit import decode_size
    from ..datasets.readers import load_dataset

    cfg = _on_data(config, data, data_root)
    size, resize = decode_size(cfg)
    return load_dataset(cfg.data, cfg.data_root, image_size=size, resize=resize).image_shape[1]


def _seeded_training(config: dict[str, Any], data: str | None, data_root: str | None, pipeline: dict[str, Any],
                     n: int) -> tuple[Callable[[Tensor], Tensor], Tensor, Tensor]:
    """The run's preprocessing, and ``n`` training images (uint8) and labels drawn with the run's seed."""
    from .augment import BatchPipeline
    from .fit import prepare_data

    cfg = _on_data(config, data, data_root)
    d = prepare_data(cfg)
    pick = torch.randperm(len(d.train_labels), generator=torch.Generator().manual_seed(cfg.seed))[:n]
    pipe = BatchPipeline(tuple(pipeline["mean"]), tuple(pipeline["std"]), pipeline["size"], pipeline["fit"])
    return pipe, d.train_images[pick], d.train_labels[pick]


def _training_batches(config: dict[str, Any], data: str | None, data_root: str | None, pipeline: dict[str, Any],
                      n: int, batch_size: int = 64) -> Iterator[Tensor]:
    """``n`` seeded training images, preprocessed a batch at a time (for batch norm recalibration)."""
    pipe, images, _ = _seeded_training(config, data, data_root, pipeline, n)
    return (pipe(images[s:s + batch_size]) for s in range(0, len(images), batch_size))


def _taylor_batch(config: dict[str, Any], data: str | None, data_root: str | None,
                  pipeline: dict[str, Any], n: int = 64) -> tuple[Tensor, Tensor]:
    """A seeded batch of ``n`` training images, preprocessed, with their labels (for Taylor importance)."""
    pipe, images, labels = _seeded_training(config, data, data_root, pipeline, n)
    return pipe(images), labels
