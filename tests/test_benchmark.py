"""``cnnzoo benchmark`` and ``compare --measure``: rows, formats, resume, power meters, the user's mistakes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch

from cnnzoo.runtime import benchmark as bench
from cnnzoo.runtime import measure, results
from cnnzoo.cli import main
from cnnzoo.runtime.power import Energy, RaplMeter, SampledMeter, Unmeasurable, nvml_meter, power_meter, rapl_meter

FAST = dict(budget_s=0.01, warmup=1, min_runs=3, threads=1)  # one thread: steady on a busy machine


@pytest.fixture
def no_rapl(tmp_path, monkeypatch):
    """Every meter of this test sees an empty powercap folder, whatever the machine has."""
    root = tmp_path / "no-powercap"
    monkeypatch.setattr(bench, "RAPL_ROOT", root)
    return root


def settings(root: Path, **kw) -> bench.Settings:
    return bench.Settings(rapl_root=root, **{**FAST, **kw})


class FakeClock:
    """A clock that only moves when told: each call of ``tick`` adds ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += self.step


# --- timing ------------------------------------------------------------------------------------------

def test_time_calls_blocks_fill_the_budget_with_at_least_min_runs():
    clock = FakeClock(0.001)
    calls = []
    timing = measure.time_calls(lambda: (calls.append(1), clock.tick()), budget_s=0.2, warmup=2, min_runs=3,
                              clock=clock)
    # 1 ms a call, blocks of 0.2 / 20 / 0.001 = 10 calls: 20 blocks fill the 0.2 s budget
    assert timing.samples == pytest.approx((0.001,) * 20)
    assert timing.calls == 200 and timing.seconds == pytest.approx(0.2)
    assert len(calls) == 2 + 1 + 200  # warm-up, the calibrating call, the timed blocks
    assert timing.median == pytest.approx(0.001) and timing.iqr == pytest.approx(0.0, abs=1e-12)


def test_time_calls_slow_call_still_gets_min_runs_and_brackets_the_window():
    clock = FakeClock(1.0)
    events = []
    timing = measure.time_calls(clock.tick, budget_s=0.5, warmup=0, min_runs=4, clock=clock,
                              on_start=lambda: events.append(("start", clock())),
                              on_stop=lambda: events.append(("stop", clock())))
    assert timing.samples == (1.0,) * 4 and timing.calls == 4
    assert events == [("start", 1.0), ("stop", 5.0)]


# --- rows --------------------------------------------------------------------------------------------

def test_rows_are_complete_and_consistent(no_rapl):
    result = bench.run_benchmark(["lenet5"], [1, 4], settings(no_rapl, train=True))
    assert [r["batch"] for r in result.rows] == [1, 4] and not result.failures and result.resumed == 0
    for r in result.rows:
        assert list(r) == results.FIELDS
        assert (r["model"], r["input"], r["img_size"], r["engine"], r["device"]) == ("lenet5", "1x32x32", 32, "eager", "cpu")
        assert r["params"] == 61706 and r["gmacs"] == pytest.approx(0.000417, abs=1e-6)
        for k in ("infer_samples_per_sec", "infer_step_ms", "infer_img_ms", "infer_runs", "peak_mem_mb",
                  "train_samples_per_sec", "train_step_ms", "train_peak_mem_mb"):
            assert r[k] > 0, k
        assert r["infer_step_ms_iqr"] >= 0 and r["infer_runs"] >= 3
        assert r["infer_img_ms"] == pytest.approx(r["infer_step_ms"] / r["batch"], rel=1e-3)
        assert r["infer_samples_per_sec"] == pytest.approx(1e3 * r["batch"] / r["infer_step_ms"], rel=1e-3)
        assert r["threads"] == 1 and r["precision"] == "fp32"
        assert r["watts"].startswith("n/a (not measurable here: no RAPL energy counters")
        assert r["joules_per_img"] == "n/a"


def test_train_step_leaves_weights_and_buffers_as_they_were(no_rapl):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 3))
    model.num_classes = 3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    row = bench._measure_train(model, 2, (1, 8, 8), settings(no_rapl), torch.device("cpu"), measure.CpuMemory(),
                               0.0, lambda: None)
    assert row["train_step_ms"] > 0 and not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_cpu_peak_counts_from_the_reset_when_memory_fell_below_the_baseline():
    memory = measure.CpuMemory()
    if memory.reason:
        pytest.skip(memory.reason)
    baseline = memory.baseline() + 512 * measure.MB  # as if a previous engine's arenas were freed since
    memory.reset()
    block = torch.ones(64 * 2**20 // 4)  # 64 MB touched after the reset
    peak = memory.peak_mb(baseline)
    del block
    assert 60 <= peak < 512


# --- results files and resume ---------------------------------------------------------------------------

def test_resume_keeps_finished_rows_and_measures_only_the_rest(no_rapl, tmp_path, monkeypatch):
    calls = []

    def fake_row(model, batch, size, settings, *rest):
        calls.append(batch)
        measured = ("infer_samples_per_sec", "infer_step_ms", "infer_step_ms_iqr", "infer_img_ms", "infer_runs",
                    "peak_mem_mb", "joules_per_img", *results.TRAIN_FIELDS)
        row = dict.fromkeys(measured, 1.5) | {"batch": batch, "engine": "eager", "watts": "n/a (test)", "power_method": ""}
        return row | ({} if settings.train else dict.fromkeys(results.TRAIN_FIELDS, ""))

    monkeypatch.setattr(bench, "_measure_row", fake_row)
    out = tmp_path / "runs" / "results.csv"
    bench.run_benchmark(["lenet5"], [1, 2], settings(no_rapl), out=out)
    assert calls == [1, 2]
    first = results.read_results(out)
    result = bench.run_benchmark(["lenet5"], [2, 1, 4], settings(no_rapl), out=out)
    assert calls == [1, 2, 4] and result.resumed == 2
    assert [r["batch"] for r in result.rows] == [2, 1, 4]
    assert result.rows[1] == first[0]  # read back with its numbers as numbers
    assert [r["batch"] for r in results.read_results(out)] == [1, 2, 4]
    # a row without the training step is measured again when --train asks for it; other settings are other rows
    bench.run_benchmark(["lenet5"], [1], settings(no_rapl, train=True), out=out)
    bench.run_benchmark(["lenet5"], [1], settings(no_rapl, threads=2), out=out)
    assert calls == [1, 2, 4, 1, 1]
    rows = results.read_results(out)
    assert len(rows) == 4
    assert [(r["batch"], r["threads"], r["train_step_ms"]) for r in rows] == [(2, 1, ""), (4, 1, ""), (1, 1, 1.5),
                                                                             (1, 2, "")]
    assert not list(out.parent.glob(".*.tmp"))  # written atomically


def test_json_results_round_trip(tmp_path, no_rapl):
    out = tmp_path / "r.json"
    result = bench.run_benchmark(["lenet5"], [2], settings(no_rapl), out=out)
    assert json.loads(out.read_text()) == result.rows


def test_a_foreign_results_file_is_a_one_line_error(tmp_path, no_rapl):
    out = tmp_path / "r.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(bench.CnnzooError, match="not a cnnzoo benchmark results file"):
        bench.run_benchmark(["lenet5"], [1], settings(no_rapl), out=out)


# --- power -------------------------------------------------------------------------------------------

def _zone(root: Path, name: str, label: str, energy: int, top: int = 2**32 - 1) -> Path:
    z = root / name
    z.mkdir(parents=True)
    (z / "name").write_text(label + "\n")
    (z / "energy_uj").write_text(f"{energy}\n")
    (z / "max_energy_range_uj").write_text(f"{top}\n")
    return z


def test_rapl_sums_packages_only_and_handles_wraparound(tmp_path):
    p0 = _zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    p1 = _zone(tmp_path, "intel-rapl:1", "package-1", 999_000_000, top=999_999_999)
    _zone(tmp_path, "intel-rapl:0:0", "core", 5)
    _zone(tmp_path, "intel-rapl:2", "psys", 7)
    meter = rapl_meter(tmp_path)
    assert isinstance(meter, RaplMeter) and [z.name for z in meter.zones] == ["intel-rapl:0", "intel-rapl:1"]
    clock = FakeClock(2.0)
    meter.clock = clock
    meter.start()
    (p0 / "energy_uj").write_text("31000000\n")  # +30 J
    (p1 / "energy_uj").write_text("9000000\n")  # wrapped at 999,999,999: +10 J
    clock.tick()
    energy = meter.stop()
    assert energy.joules == pytest.approx(40.000001) and energy.watts == pytest.approx(20.0000005)
    assert "package-0, package-1" in energy.note and "other processes included" in energy.note


def test_rapl_not_measurable_paths(tmp_path, monkeypatch):
    absent = rapl_meter(tmp_path / "nothing")
    assert isinstance(absent, Unmeasurable) and "there is no" in absent.reason
    assert absent.stop() == Energy(None, None, f"n/a (not measurable here: {absent.reason})")
    assert "has no intel-rapl" in rapl_meter(tmp_path).reason
    _zone(tmp_path, "intel-rapl:0", "package-0", 1)

    def denied(path, default=None):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("cnnzoo.runtime.power._read_int", denied)
    meter = power_meter(torch.device("cpu"), tmp_path)
    assert isinstance(meter, Unmeasurable) and "permission denied" in meter.reason and "root" in meter.reason


def test_sampled_meter_means_the_samples(monkeypatch):
    readings = iter([100.0, 200.0, 300.0] + [300.0] * 1000)
    clock = FakeClock(3.0)
    meter = SampledMeter(lambda: next(readings), "fake", interval=10.0, clock=clock)
    meter.start()
    clock.tick()
    energy = meter.stop()  # the start and stop samples: the thread waits 10 s before its first
    assert energy.watts == pytest.approx(150.0) and energy.joules == pytest.approx(450.0)


def test_nvml_meter_reads_torch_power_draw_or_says_why(monkeypatch):
    monkeypatch.setattr(torch.cuda, "power_draw", lambda device=None: 75_000, raising=False)
    meter = nvml_meter(torch.device("cuda"))
    assert isinstance(meter, SampledMeter) and meter.read_watts() == 75.0

    def missing(device=None):
        raise ModuleNotFoundError("pynvml does not seem to be installed or it can't be imported.")

    monkeypatch.setattr(torch.cuda, "power_draw", missing, raising=False)
    meter = nvml_meter(torch.device("cuda"))
    assert isinstance(meter, Unmeasurable) and "pynvml" in meter.method and meter.method.startswith("n/a")


# --- the command line ------------------------------------------------------------------------------------

def cli(argv: list[str]) -> int:
    """The exit status of ``cnnzoo ARGV``, whether argparse or the command refused it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


FAST_CLI = ["--time-budget", "0.01", "--warmup", "1", "--threads", "1"]


def test_cli_formats_out_and_plot(tmp_path, capsys, no_rapl):
    out, png = tmp_path / "r.csv", tmp_path / "canziani.png"
    assert main(["benchmark", "lenet5", "--batch-sizes", "1,2", "--format", "csv", "--out", str(out),
                 "--plot", str(png), *FAST_CLI]) == 0
    printed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["batch"] for r in printed] == ["1", "2"] and list(printed[0]) == results.FIELDS
    assert png.stat().st_size > 10_000 and out.exists()
    assert main(["benchmark", "lenet*", "--batch-sizes", "2,1", "--format", "json", "--out", str(out), *FAST_CLI]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert {r["model"] for r in rows} >= {"lenet5"} and "taken from" in captured.err
    assert main(["benchmark", "lenet5", "--batch-sizes", "1", "--out", str(out), *FAST_CLI]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:6] == ["model", "input", "batch", "engine", "precision", "img/s"]
    assert table[2].split()[:4] == ["lenet5", "1x32x32", "1", "eager"]
    assert any(line.startswith("W: n/a (not measurable here:") for line in table)


def test_cli_model_list_file(tmp_path, capsys, no_rapl):
    listing = tmp_path / "models.txt"
    listing.write_text("# the small one\nlenet5\n\nlenet5  # twice: once\n")
    assert main(["benchmark", "--model-list", str(listing), "--batch-sizes", "1", "--format", "json", *FAST_CLI]) == 0
    assert [r["model"] for r in json.loads(capsys.readouterr().out)] == ["lenet5"]


def test_resolve_models_patterns_and_all():
    everything = bench.resolve_models(["all"])
    assert "lenet5" in everything and len(everything) == len(set(everything)) > 20
    assert bench.resolve_models(["resnet1*", "resnet18"]) == [m for m in everything if m.startswith("resnet1")]


@pytest.mark.parametrize("argv, message", [
    (["--batch-sizes", "0,x"], "batch sizes '0,x' are not whole numbers of 1 or more"),
    (["--batch-sizes", ","], "are not whole numbers"),
    (["--input", "3x"], "not of the form CxHxW"),
    (["--input", "3x32x32"], "channel"),
    (["--engine", "onnxruntime", "--precision", "bf16"], "--engine onnxruntime cannot run --precision bf16; it runs fp32"),
    (["--precision", "int8"], "cnnzoo quantize"),
    (["--engine", "eager,tensorrt"], "'tensorrt' is not one of auto, eager"),
    (["--engine", "onnxruntime", "--channels-last"], "does not apply to --engine onnxruntime"),
    (["--time-budget", "0"], "must be above 0 s"),
    (["--threads", "0"], "must be at least 1"),
    (["--plot", "chart.txt"], "a chart is written as .png"),
    (["--model-list", "/nonexistent/models.txt"], "cannot read the model list"),
])
def test_cli_mistakes_are_one_line(capsys, argv, message):
    assert cli(["benchmark", "lenet5", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnzoo: error:") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("models, message", [
    (["lenet6"], "unknown model 'lenet6': did you mean lenet5"),
    (["zzz*"], "no registered model matches 'zzz*'"),
    ([], "no models given"),
])
def test_cli_unknown_models(capsys, models, message):
    assert cli(["benchmark", *models]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_cli_cuda_without_a_gpu(capsys):
    assert cli(["benchmark", "lenet5", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA GPU is usable here" in err


def test_compare_measure_adds_measured_columns(capsys, no_rapl):
    assert main(["compare", "lenet5", "exercise:inception-bottleneck", "--measure", "--measure-batch", "2",
                 *FAST_CLI]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-6:] == ["img/s", "@2", "ms/img", "peak", "MB", "W"]
    lenet = lines[2].split()
    assert lenet[0] == "lenet5" and float(lenet[-4].replace(",", "")) > 0 and lenet[-1] == "n/a"
    assert lines[3].split()[-4:] == ["—"] * 4  # an exercise is counted, not run
    assert lines[4].startswith("measured at batch 2 on ") and "not measurable here" in lines[4]
    assert main(["compare", "lenet5", "--measure", "--format", "json", *FAST_CLI]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["measure_batch"] == 8 and row["infer_samples_per_sec"] > 0 and row["engine"] == "eager"


def test_plot_says_why_power_is_missing(tmp_path, no_rapl):
    rows = bench.run_benchmark(["lenet5"], [1, 2], settings(no_rapl)).rows
    rows += [{**r, "model": "resnet18", "top1": 69.76, "watts": 50.0 + r["batch"]} for r in rows]
    results.plot_benchmark(rows, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_a_model_the_engine_cannot_take_is_skipped_and_the_run_goes_on(no_rapl, monkeypatch):
    from cnnzoo.runtime import EngineError

    real = bench.build_engine

    def picky(module, *args):
        if module.model_name == "lenet5":
            raise EngineError("the onnxruntime engine cannot run lenet5: a test says no")
        return real(module, *args)

    monkeypatch.setattr(bench, "build_engine", picky)
    with pytest.warns(UserWarning, match="lenet5 skipped: the onnxruntime engine cannot run lenet5"):
        result = bench.run_benchmark(["lenet5", "resnet20_cifar"], [1], settings(no_rapl))
    assert [r["model"] for r in result.rows] == ["resnet20_cifar"] and len(result.failures) == 1
