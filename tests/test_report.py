"""`cnnzoo report`: the page's data from the trace, its self-containment, the CLI, and the page in headless Chromium."""

from __future__ import annotations

import re

import pytest
import torch

from cnnzoo import analyze
from cnnzoo.cli import main
from cnnzoo.commands.report import model_facts
from cnnzoo.registry import create_model, model_info
from cnnzoo.report import model_data, report_html, stage_spans, towers
from cnnzoo.report.browser import dump_dom, find_chromium, parse_dom, screenshot
from cnnzoo.report.data import ROW_FIELDS
from cnnzoo.report.page import _script_json

F = {name: i for i, name in enumerate(ROW_FIELDS)}
MODELS = ["alexnet2012", "resnet50", "googlenet", "densenet121", "mobilenet_v2", "fractalnet20_cifar", "lenet5"]


@pytest.fixture(scope="module")
def analyses():
    return {name: analyze(name) for name in MODELS}


def _items(data: dict, k: int) -> list[int]:
    """The rows below node ``k`` of the item tree, in order."""
    rows = []
    for c in data["nodes"][k]["children"]:
        rows += [c["r"]] if "r" in c else _items(data, c["n"])
    return rows


# the data -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_tree_holds_every_traced_row_once_in_order(analyses, name):
    a = analyses[name]
    data = model_data(a)
    rows = [i for s in data["stages"] for i in _items(data, s)]
    assert rows == [r.index for r in a.rows if r.kind != "unused"]
    assert sum(data["rows"][i][F["params"]] for i in range(len(a.rows))) == a.totals.params
    assert sum(r[F["macs"]] for r in data["rows"]) == a.totals.macs


@pytest.mark.parametrize("name", MODELS)
def test_data_flow_points_back(analyses, name):
    a = analyses[name]
    for r in a.rows:
        assert all(0 <= i < r.index for i in r.inputs), r
        if r.kind not in ("input", "unused"):
            assert r.inputs, f"{r.name} {r.op} consumes nothing"


def test_shortcut_and_concatenation_in_the_data_flow(analyses):
    a = analyses["resnet50"]
    add = a.row("layer1.0", "add")
    assert {a.rows[i].name for i in add.inputs} == {"layer1.0.bn3", "layer1.0.downsample.1"}
    g = analyses["googlenet"]
    cat = g.row("inception3a", "cat")
    assert [g.rows[i].name.split(".")[1] for i in cat.inputs] == ["branch1", "branch2", "branch3", "branch4"]


def test_collapse_renumbers_the_data_flow(analyses):
    rows = analyses["resnet50"].collapse(2)
    index = {r.name: r.index for r in rows}
    assert rows[index["layer1.1"]].inputs == (index["layer1.0"],)
    assert rows[index["layer2.0"]].inputs == (index["layer1.2"],)


def test_stages_follow_feature_info(analyses):
    spans = stage_spans(analyses["resnet50"])
    assert [label for label, _ in spans] == ["stage 1", "stage 2", "stage 3", "stage 4", "stage 5", "head"]
    assert [r.name for r in spans[1][1]][:2] == ["maxpool", "layer1.0.conv1"]
    assert spans[-1][1][-1].name == "fc"


def test_stage_lists_its_blocks(analyses):
    data = model_data(analyses["resnet50"])
    stage = data["nodes"][data["stages"][1]]
    labels = [data["nodes"][c["n"]]["label"] if "n" in c else data["rows"][c["r"]][F["name"]]
              for c in stage["children"]]
    assert labels == ["maxpool", "layer1.0", "layer1.1", "layer1.2"]


def test_alexnet_towers(analyses):
    a = analyses["alexnet2012"]
    t = dict(zip((r.index for r in a.rows), towers(a)))
    by = {(r.name, r.op): t[r.index] for r in a.rows}
    assert by["features.0", "conv2d"] == 1  # conv1 sees the whole image
    assert by["features.2", "cat"] == 2 and by["features.3", "max_pool2d"] == 2  # LRN within each tower
    assert by["features.4", "conv2d"] == 2 and by["features.8", "conv2d"] == 1  # conv2 per tower, conv3 across
    assert by["features.10", "conv2d"] == by["features.12", "conv2d"] == 2
    assert by["classifier.0", "linear"] == 1


def test_alexnet_per_tower_lrn_rows_in_the_page_data(analyses):
    """Both LRNs chunk a two-tower volume and normalise each half alone: the chunk's piece and each LRN are one
    tower of the table's shape, their concatenation two, in stage 1 and stage 2 alike."""
    data = model_data(analyses["alexnet2012"])
    rows = [(r[F["index"]], r[F["name"]], r[F["type"]], r[F["output"]], r[F["towers"]]) for r in data["rows"]]
    assert rows[3:14] == [
        (3, "features.2", "chunk", "48x55x55", 1), (4, "features.2.lrn", "LocalResponseNorm", "48x55x55", 1),
        (5, "features.2.lrn", "LocalResponseNorm", "48x55x55", 1), (6, "features.2", "cat", "96x55x55", 2),
        (7, "features.3", "MaxPool2d", "96x27x27", 2), (8, "features.4", "Conv2d", "256x27x27", 2),
        (9, "features.5", "ReLU", "256x27x27", 2), (10, "features.6", "chunk", "128x27x27", 1),
        (11, "features.6.lrn", "LocalResponseNorm", "128x27x27", 1),
        (12, "features.6.lrn", "LocalResponseNorm", "128x27x27", 1), (13, "features.6", "cat", "256x27x27", 2)]
    assert [r[F["inputs"]] for r in data["rows"][10:14]] == [[9], [10], [10], [11, 12]]


@pytest.mark.parametrize("name, graph, aux, heads", [
    ("googlenet", 6_624_904, 6_379_984, ["aux1", "aux2"]),
    ("googlenet_paper", 6_998_552, 6_379_728, ["aux1", "aux2"]),
    ("inception_v3", 23_834_568, 3_326_696, ["AuxLogits"]),
])
def test_auxiliary_heads_are_counted_apart(name, graph, aux, heads):
    """The eval graph never calls the auxiliary heads: the page counts the network's own parameters and the
    heads' apart, as `cnnzoo info` does, and carries its notes."""
    data = model_data(analyze(name), model_facts(name))
    t = data["totals"]
    assert (t["graph_params"], t["unused_params"], t["unused_modules"]) == (graph, aux, heads)
    assert t["params"] == graph + aux == model_info(name).params
    with torch.device("meta"):
        assert sum(p.numel() for p in create_model(name, aux_logits=False).parameters()) == graph
    assert data["info"]["notes"] == model_info(name).notes
    trained = model_data(analyze(name, training=True))["totals"]  # the training graph calls them
    assert (trained["graph_params"], trained["unused_params"], trained["unused_modules"]) == (graph + aux, 0, [])


def test_googlenet_notes_say_its_5x5_branch_has_3x3_kernels():
    assert "'5x5' branch uses 3x3 kernels" in model_data(analyze("googlenet"), model_facts("googlenet"))["info"]["notes"]


def test_depthwise_and_resnext_groups_are_not_towers():
    for name in ("mobilenet_v1", "resnext50_32x4d"):
        assert set(towers(analyze(name))) == {1}


# the page -------------------------------------------------------------------------------------------
def test_page_is_self_contained(analyses):
    page = report_html([analyses["resnet50"]])
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?(https?:)?//", page, re.I)
    assert len(page.encode()) < 2_000_000


@pytest.mark.slow
@pytest.mark.parametrize("name", ["densenet264", "inception_v4", "resnet152"])
def test_large_models_stay_under_2_mb(name):
    assert len(report_html([analyze(name)]).encode()) < 2_000_000


def test_embedded_json_cannot_close_the_script():
    text = _script_json({"name": "</script><script>alert(1)</script>", "x": "<!--"})
    assert "</" not in text and "<!--" not in text


def test_report_html_checks_infos(analyses):
    with pytest.raises(ValueError, match="one info"):
        report_html([analyses["lenet5"]], [None, None])


# the command line -----------------------------------------------------------------------------------
def test_report_command_writes_the_page(tmp_path, capsys):
    out = tmp_path / "lenet.html"
    assert main(["report", "lenet5", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert '"model":"lenet5"' in out.read_text()


def test_summary_format_html_prints_the_page(capsys):
    assert main(["summary", "lenet5", "--format", "html"]) == 0
    assert capsys.readouterr().out.startswith("<!doctype html>")


def test_compare_page(tmp_path, capsys):
    out = tmp_path / "c.html"
    assert main(["report", "--compare", "lenet5", "alexnet2012", "exercise:inception-naive", "--out", str(out)]) == 0
    text = out.read_text()
    assert '"compare":true' in text and '"model":"exercise:inception-naive"' in text


@pytest.mark.parametrize("argv, message", [
    (["report", "resnet5"], "unknown model 'resnet5'"),
    (["report"], "give one MODEL, or --compare"),
    (["report", "lenet5", "--compare", "vgg11"], "give one MODEL, or --compare"),
    (["report", "lenet5", "--out", "x.png"], "should end in .html"),
    (["report", "lenet5", "--weights", "nope"], "neither a file nor a weights tag"),
    (["report", "--compare", "lenet5", "vgg11", "--weights", "w.pt"], "one model"),
    (["report", "vgg16", "--input", "3x16x16"], "needs inputs of at least 32x32"),
    (["report", "exercise:nope"], "unknown exercise"),
])
def test_report_user_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_bad_input_size_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "lenet5", "--input", "3xax2"])
    assert exc.value.code == 2
    assert "not of the form CxHxW" in capsys.readouterr().err


def test_weights_file_is_analysed_with_its_arguments(tmp_path, capsys):
    from cnnzoo import create_model
    from cnnzoo.weights import save_model

    path = tmp_path / "resnet7.safetensors"
    save_model(create_model("resnet18_cifar", num_classes=7), path)
    out = tmp_path / "r.html"
    assert main(["report", "resnet18_cifar", "--weights", str(path), "--out", str(out)]) == 0
    text = out.read_text()
    assert "num_classes=7" in text and '"output":"7"' in text
    assert main(["report", "lenet5", "--weights", str(path)]) == 2
    assert "holds a resnet18_cifar, not a lenet5" in capsys.readouterr().err



def test_weights_file_sets_the_default_input_channels(tmp_path):
    from cnnzoo import create_model
    from cnnzoo.weights import save_model

    path = tmp_path / "lenet-rgb.safetensors"  # LeNet-5 trained on colour photos: 3 channels, not its own 1
    save_model(create_model("lenet5", num_classes=4, in_chans=3), path)
    out = tmp_path / "l.html"
    assert main(["report", "lenet5", "--weights", str(path), "--out", str(out)]) == 0
    assert "3x32x32" in out.read_text()

def test_weights_and_data_add_what_the_network_learned(tmp_path, capsys):
    from cnnzoo.weights import save_model
    from datagen import write_idx_dataset

    root = write_idx_dataset(tmp_path / "mnist", n_train=40, n_test=30)
    path = tmp_path / "lenet.safetensors"
    save_model(create_model("lenet5"), path)
    out = tmp_path / "l.html"
    assert main(["report", "lenet5", "--weights", str(path), "--out", str(out)]) == 0
    text = out.read_text()
    assert "What it learned" in text and "first-layer filters: conv1: 6 filters 1x5x5" in text
    assert "top-9 patches" not in text
    assert main(["report", "lenet5", "--weights", str(path), "--data", "mnist", "--data-root", str(root),
                 "--out", str(out)]) == 0
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", out.read_text())
    assert captions[0] == "first-layer filters: conv1: 6 filters 1x5x5"
    assert [c.split(":")[0] for c in captions[1:]] == ["stage pool1 (6 units)", "stage pool2 (16 units)",
                                                        "stage act3 (120 units)"]
    assert all("over 30 test images of mnist" in c for c in captions[1:])
    capsys.readouterr()
    assert main(["report", "lenet5", "--data", "mnist"]) == 2
    assert "--data shows what trained weights learned: give --weights too" in capsys.readouterr().err


# in a real browser ----------------------------------------------------------------------------------
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no chromium binary: `apt-get install chromium` "
                                    "(make setup tries); the page's browser tests need it")


@pytest.fixture(scope="module")
def resnet_page(tmp_path_factory, analyses):
    path = tmp_path_factory.mktemp("report") / "resnet50.html"
    path.write_text(report_html([analyses["resnet50"]]), encoding="utf-8")
    return path


def _clean(dom):
    errors = dom.by_id("cnnzoo-errors")
    assert errors is not None and errors.all_text().strip() == "", errors.all_text()
    assert dom.by_id("cnnzoo-status").attrs.get("data-ready") == "1"


def _shown(dom) -> list[tuple[str, str]]:
    return [(g.attrs["data-kind"], g.attrs.get("data-key") or g.attrs.get("data-row"))
            for g in dom.find_all("g", class_="node")]


@needs_chromium
def test_page_loads_with_a_node_per_stage_and_totals(resnet_page, analyses):
    a = analyses["resnet50"]
    dom = parse_dom(dump_dom(resnet_page, "expand=none"))
    _clean(dom)
    data = model_data(a)
    assert _shown(dom) == [("stage", data["nodes"][k]["key"]) for k in data["stages"]]
    totals = {td.attrs["data-total"]: int(td.attrs["data-value"])
              for td in dom.find_all("td") if "data-total" in td.attrs}
    t = a.totals
    assert totals == {"params": t.params, "mem": t.activation_elements, "macs": t.macs, "flops": t.flops}
    assert len(dom.find_all("table", class_="layers")[0].find_all("tbody")[0].find_all("tr")) == len(a.rows)


def _expected(data: dict, open_keys: set[str]) -> list[tuple[str, str]]:
    """What the diagram should show with the containers ``open_keys`` open, in the page's terms."""
    out = []

    def walk(k: int) -> None:
        for c in data["nodes"][k]["children"]:
            if "r" in c:
                out.append((data["rows"][c["r"]][F["kind"]], str(c["r"])))
            elif data["nodes"][c["n"]]["key"] in open_keys:
                walk(c["n"])
            else:
                out.append(("block", data["nodes"][c["n"]]["key"]))

    for s in data["stages"]:
        if data["nodes"][s]["key"] in open_keys:
            walk(s)
        else:
            out.append(("stage", data["nodes"][s]["key"]))
    return out


@needs_chromium
def test_opening_a_block_shows_its_layers_and_shortcut(resnet_page, analyses):
    a = analyses["resnet50"]
    data = model_data(a)
    dom = parse_dom(dump_dom(resnet_page, "expand=s1/layer1.0"))  # opens stage 2 and its first block
    _clean(dom)
    shown = _shown(dom)
    assert sorted(shown) == sorted(_expected(data, {"s1", "s1/layer1.0"}))
    assert ("conv", str(a.row("layer1.0.conv1").index)) in shown and ("block", "s1/layer1.0.downsample") in shown
    assert [g.attrs["data-key"] for g in dom.find_all("g", class_="frame")] == ["s1", "s1/layer1.0"]
    edges = {(p.attrs["data-from"], p.attrs["data-to"]) for p in dom.find_all("path", class_="edge")}
    downsample = next(k for k, n in enumerate(data["nodes"]) if n["key"] == "s1/layer1.0.downsample")
    add = a.row("layer1.0", "add").index
    assert (f"r{a.row('maxpool').index}", f"n{downsample}") in edges  # the projection shortcut...
    assert (f"n{downsample}", f"r{add}") in edges  # ...joins the residual branch at the add
    assert (f"r{a.row('layer1.0.bn3').index}", f"r{add}") in edges


@needs_chromium
def test_alexnet_towers_drawn_side_by_side_and_screenshot(tmp_path, analyses):
    page = tmp_path / "alexnet2012.html"
    page.write_text(report_html([analyses["alexnet2012"]]), encoding="utf-8")
    dom = parse_dom(dump_dom(page, "expand=stages"))
    _clean(dom)
    conv2 = analyses["alexnet2012"].row("features.4").index
    node = next(g for g in dom.find_all("g", class_="node") if g.attrs.get("data-row") == str(conv2))
    assert len(node.find_all("rect")) == 2
    crossing = [p for p in dom.find_all("path", class_="edge") if "edge-cross" in p.attrs["class"]]
    assert not crossing  # the closed per-tower LRN takes each tower's half, not the other's
    png = screenshot(page, tmp_path / "alexnet.png", "expand=stages", size=(900, 700))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@needs_chromium
def test_alexnet_towers_everything_open_and_collapsed(tmp_path, analyses):
    a = analyses["alexnet2012"]
    data = model_data(a)
    page = tmp_path / "alexnet2012.html"
    page.write_text(report_html([a]), encoding="utf-8")
    dom = parse_dom(dump_dom(page, "expand=all"))
    _clean(dom)
    nodes = {g.attrs["data-row"]: g for g in dom.find_all("g", class_="node") if "data-row" in g.attrs}
    for r in data["rows"][1:23]:
        boxes = nodes[str(r[F["index"]])].find_all("rect")
        assert len(boxes) == r[F["towers"]], r
    lrn = [nodes[str(r.index)] for r in a.rows if r.op == "local_response_norm"]
    assert [[t.all_text() for t in g.find_all("text", class_="t2")] for g in lrn] == [["48x55x55"]] * 2 + [["128x27x27"]] * 2
    edges = dom.find_all("path", class_="edge")
    assert not [p for p in edges if "edge-cross" in p.attrs["class"]]  # conv2, conv4 and conv5 stay in their tower
    starts = {p.attrs["data-from"] for p in edges}
    assert all(f"r{i}" in starts for i in range(len(a.rows) - 1))  # every box but the logits feeds another
    dom = parse_dom(dump_dom(page, "expand=none"))
    _clean(dom)
    stages = {g.attrs["data-key"]: g for g in dom.find_all("g", class_="node")}
    for k in data["stages"]:
        key, rows = data["nodes"][k]["key"], _items(data, k)
        g = stages[key]
        line = " ".join(t.all_text() for t in g.find_all("text", class_="t2"))
        assert "MACs" in line and "params" in line, (key, line)
        assert len(g.find_all("rect")) == data["rows"][rows[-1]][F["towers"]]
    two = [data["nodes"][k]["key"] for k in data["stages"] if data["rows"][_items(data, k)[-1]][F["towers"]] == 2]
    assert two == ["s0", "s1", "s2"]


@needs_chromium
def test_googlenet_page_counts_the_aux_heads_apart(tmp_path):
    names = ["googlenet", "inception_v3"]
    results = [analyze(n) for n in names]
    page = tmp_path / "googlenet.html"
    page.write_text(report_html(results[:1], [model_facts("googlenet")]), encoding="utf-8")
    dom = parse_dom(dump_dom(page))
    _clean(dom)
    card = next(c for c in dom.find_all("div", class_="card") if c.find_all("span")[0].all_text() == "parameters")
    assert card.find_all("b")[0].all_text() == "6.62 M"
    assert card.find_all("small")[0].all_text() == "6,624,904; 13,004,888 with aux1, aux2 (not called)"
    assert "'5x5' branch uses 3x3 kernels" in dom.find_all("p", class_="notes")[0].all_text()
    assert "aux1, aux2 (6,379,984 params)" in dom.find_all("p", class_="not-called")[0].all_text()
    chart = next(f for f in dom.find_all("figure") if f.find_all("figcaption")[0].all_text().startswith("Parameters per"))
    bars = [r.attrs["data-tip"] for r in chart.find_all("rect") if "data-tip" in r.attrs]
    assert bars and not [b for b in bars if b.startswith("aux")]
    assert max(int(b.split("\n")[1].split()[0].replace(",", "")) for b in bars) == 1_025_000  # the fc, not an aux fc1
    compare = tmp_path / "compare.html"
    compare.write_text(report_html(results, [model_facts(n) for n in names], compare=True), encoding="utf-8")
    dom = parse_dom(dump_dom(compare))
    _clean(dom)
    tips = {c.attrs["data-model"]: c.attrs["data-tip"] for c in dom.find_all("circle", class_="bubble")}
    assert "\n6,624,904 params (+ aux1, aux2 (6,379,984 params), not called)\n" in tips["googlenet"]
    assert "\n23,834,568 params (+ AuxLogits (3,326,696 params), not called)\n" in tips["inception_v3"]


@needs_chromium
def test_compare_page_loads_with_a_bubble_per_model(tmp_path, analyses):
    page = tmp_path / "compare.html"
    names = ["alexnet2012", "resnet50", "googlenet"]
    infos = [{"top1": 62.5}, {"top1": 76.1}, {"top1": None}]
    page.write_text(report_html([analyses[n] for n in names], infos, compare=True), encoding="utf-8")
    dom = parse_dom(dump_dom(page))
    _clean(dom)
    assert sorted(c.attrs["data-model"] for c in dom.find_all("circle", class_="bubble")) == ["alexnet2012", "resnet50"]
    assert len(dom.find_all("table", class_="layers")) == 1 + len(names)  # the totals, then one per model


@needs_chromium
def test_a_script_error_is_caught(tmp_path, analyses):
    page = tmp_path / "broken.html"
    page.write_text(report_html([analyses["lenet5"]]).replace('{"fields":', '{"fieldz":', 1), encoding="utf-8")
    dom = parse_dom(dump_dom(page))
    assert "TypeError" in dom.by_id("cnnzoo-errors").all_text()


def _results(path, rows):
    from cnnzoo.runtime.results import FIELDS, write_results

    write_results(path, [{**dict.fromkeys(FIELDS), "engine_requested": "eager", "device": "cpu", "precision": "fp32",
                          "channels_last": False, "threads": 2, "device_name": "test cpu", **r} for r in rows])


def test_benchmark_results_join_the_page(tmp_path, analyses):
    from cnnzoo.commands.report import measured

    path = tmp_path / "bench.csv"
    row = {"model": "lenet5", "input": "1x32x32"}
    _results(path, [{**row, "batch": 8, "infer_img_ms": 0.5, "infer_samples_per_sec": 2000},
                    {**row, "batch": 1, "infer_img_ms": 2.0, "infer_samples_per_sec": 500},
                    {**row, "input": "1x64x64", "batch": 1, "infer_img_ms": 9.0, "infer_samples_per_sec": 111}])
    a = analyses["lenet5"]
    assert measured(str(path), a, None)["infer_img_ms"] == 2.0  # the smallest batch, at the analysed input
    assert measured(str(path), a, 8)["infer_samples_per_sec"] == 2000
    assert measured(str(path), a, 4) is None
    assert measured(str(path), analyses["alexnet2012"], None) is None


def test_benchmark_option_errors(tmp_path, capsys):
    assert main(["report", "lenet5", "--benchmark", str(tmp_path / "none.csv"), "--out", str(tmp_path / "x.html")]) == 2
    assert "does not exist; write one with `cnnzoo benchmark" in capsys.readouterr().err


@needs_chromium
def test_compare_by_measured_time(tmp_path, analyses):
    page = tmp_path / "timed.html"
    names = ["alexnet2012", "resnet50", "googlenet"]
    infos = [{"top1": 62.5, "measured": {"batch": 1, "infer_img_ms": 5.0, "infer_samples_per_sec": 200}},
             {"top1": 76.1, "measured": {"batch": 1, "infer_img_ms": 12.0, "infer_samples_per_sec": 83}},
             {"top1": 69.8}]
    page.write_text(report_html([analyses[n] for n in names], infos, compare=True), encoding="utf-8")
    dom = parse_dom(dump_dom(page, "x=ms"))
    _clean(dom)
    assert sorted(c.attrs["data-model"] for c in dom.find_all("circle", class_="bubble")) == ["alexnet2012", "resnet50"]
    assert any(t.all_text() == "ms per image (measured)" for t in dom.find_all("text", class_="label"))
    assert "googlenet" in next(p.all_text() for p in dom.find_all("p", class_="hint") if "left off" in p.all_text())


@needs_chromium
def test_console_errors_and_failed_loads_are_caught(tmp_path, analyses):
    page = tmp_path / "noisy.html"
    noise = '<img src="missing.png"><script>console.error("boom")</script></body>'
    text = report_html([analyses["lenet5"]]).replace("</body>", noise)
    page.write_text(text, encoding="utf-8")
    errors = parse_dom(dump_dom(page)).by_id("cnnzoo-errors").all_text()
    assert "console.error: boom" in errors and "missing.png" in errors


# the papers' names, carried by the model definitions ------------------------------------------------
def _names(name: str) -> list[str]:
    data = model_data(analyze(name))
    return [n["name"] for n in data["nodes"] if n.get("name")]  # a stage that is one block (NiN's last) takes its name


def test_stage_names_are_the_papers():
    data = model_data(analyze("resnet50"))
    names = [data["nodes"][k].get("name", "") for k in data["stages"]]
    assert names == ["conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", ""]
    data = model_data(analyze("preact_resnet164_cifar"))
    assert [data["nodes"][k].get("name", "") for k in data["stages"]] == ["conv2_x", "conv3_x", "conv4_x", ""]


@pytest.mark.parametrize("name, names", [
    ("googlenet", [f"Inception ({k})" for k in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]),
    ("squeezenet1_0", [f"Fire{k}" for k in range(2, 10)]),
    ("inception_v4",
     ["Inception-A"] * 4 + ["Reduction-A"] + ["Inception-B"] * 7 + ["Reduction-B"] + ["Inception-C"] * 3),
    ("densenet121", ["Dense block (1)", "Transition layer (1)", "Dense block (2)", "Transition layer (2)",
                     "Dense block (3)", "Transition layer (3)", "Dense block (4)"]),
    ("nin", ["mlpconv"] * 4),
])
def test_block_names_are_the_papers(name, names):
    assert _names(name) == names


# the layout, measured in the browser ----------------------------------------------------------------
LAYOUT_MODELS = {  # model: concatenations drawn with their inputs side by side, everything open
    "lenet5": 0, "googlenet": 9, "inception_v4": 19, "densenet121": 58, "fractalnet20_cifar": 10, "resnet50": 0,
    "preact_resnet164_cifar": 0,
}


@needs_chromium
@pytest.mark.parametrize("name", LAYOUT_MODELS)
def test_layout_geometry(name):
    """Stages open and everything open: no overlapping frames or boxes, every title inside its frame, no edge
    through a box it does not connect, concatenations' inputs in the model's order, no drift of the main chain."""
    from cnnzoo.report import measure_layout

    a = analyze(name)
    data = model_data(a)
    found = measure_layout(report_html([a]), ("Open stages", "Open all"))
    for view, m in found.items():
        assert (m["frame_overlaps"], m["box_overlaps"], m["titles_outside"], m["crossings"], m["misordered"]) == \
            (0, 0, 0, 0, 0), (view, m)
        assert m["drift"] <= m["box_width"], (view, m)
    stages = {data["nodes"][k]["key"] for k in data["stages"]}
    assert found["Open stages"]["boxes"] == len(_expected(data, stages))
    assert found["Open stages"]["frames"] == len(stages)
    assert found["Open all"]["boxes"] == sum(r.kind != "unused" for r in a.rows)
    assert found["Open all"]["frames"] == len(data["nodes"])
    assert found["Open all"]["joins"] == LAYOUT_MODELS[name]


@needs_chromium
def test_geometry_probe_sees_a_broken_layout(analyses):
    """The counts above can fail: a box moved onto an edge, a title moved out of its frame, a frame moved onto
    its sibling and two branches swapped are each counted."""
    from cnnzoo.report import measure_layout

    breaks = """<script>window.__cnnzooMutate = (svg) => {
      const move = (g, x, y) => g.querySelectorAll("rect").forEach((r) => { r.setAttribute("x", x); r.setAttribute("y", y); });
      const edge = [...svg.querySelectorAll("path.edge")].find((p) => p.getTotalLength() > 200);
      const mid = edge.getPointAtLength(edge.getTotalLength() / 2);
      const other = [...svg.querySelectorAll("g.node")].find((g) => ![edge.dataset.from, edge.dataset.to].includes(g.dataset.item));
      move(other, mid.x - 20, mid.y - 10);
      svg.querySelector("text.frame-title").setAttribute("x", -500);
      const frames = [...svg.querySelectorAll("g.frame")], a = frames[1];
      const b = frames.find((f) => f !== a && f.dataset.parent === a.dataset.parent);
      b.querySelector("rect").setAttribute("y", a.querySelector("rect").getAttribute("y"));
      b.querySelector("rect").setAttribute("x", a.querySelector("rect").getAttribute("x"));
      const into = [...svg.querySelectorAll("path.edge")].filter((p) => p.dataset.to === svg.querySelector('g.node[data-kind="concat"]').dataset.item);
      const first = svg.querySelector(`g.node[data-item="${into[0].dataset.from}"]`);
      const last = svg.querySelector(`g.node[data-item="${into[into.length - 1].dataset.from}"]`);
      const r0 = first.querySelector("rect"), r1 = last.querySelector("rect"), x0 = r0.getAttribute("x"), y0 = r0.getAttribute("y");
      move(first, r1.getAttribute("x"), r1.getAttribute("y"));
      move(last, x0, y0);
    };</script></body>"""
    html = report_html([analyses["googlenet"]]).replace("</body>", breaks, 1)
    m = measure_layout(html, ("Blocks",))["Blocks"]
    assert m["crossings"] >= 1 and m["titles_outside"] == 1 and m["frame_overlaps"] >= 1 and m["misordered"] == 1, m


def _texts(g) -> list[str]:
    return [t.all_text() for t in g.find_all("text")]


@needs_chromium
def test_first_view_shows_shortcuts_branches_and_concatenations(resnet_page, tmp_path, analyses):
    a = analyses["resnet50"]
    dom = parse_dom(dump_dom(resnet_page))
    _clean(dom)
    rows = {g.attrs["data-row"] for g in dom.find_all("g", class_="node") if "data-row" in g.attrs}
    adds = [r for r in a.rows if r.op == "add"]
    assert len(adds) == 16 and all(str(r.index) in rows for r in adds)  # every block's shortcut joins at its add
    titles = [t.text for t in dom.find_all("text", class_="frame-title")]  # the text, not its <title>
    assert titles[:3] == ["− conv1", "− conv2_x", "− layer1.0 · Bottleneck"]
    page = tmp_path / "googlenet.html"
    page.write_text(report_html([analyses["googlenet"]]), encoding="utf-8")
    dom = parse_dom(dump_dom(page))
    _clean(dom)
    assert "− Inception (3a)" in [t.text for t in dom.find_all("text", class_="frame-title")]
    blocks = {g.attrs["data-key"]: g for g in dom.find_all("g", class_="node") if "data-key" in g.attrs}
    assert _texts(blocks["s2/inception3a.branch2"])[:2] == ["branch2", "128x28x28 · 1x1 → 3x3"]
    assert _texts(blocks["s2/inception3a.branch4"])[1] == "32x28x28 · 3x3 pool → 1x1"
    cats = [g for g in dom.find_all("g", class_="node") if g.attrs.get("data-kind") == "concat"]
    assert len(cats) == 9


@needs_chromium
def test_boxes_are_named_for_screen_readers_and_keyboards(resnet_page):
    dom = parse_dom(dump_dom(resnet_page, "expand=s1"))
    _clean(dom)
    svg = dom.find_all("svg", class_="diagram")[0]
    assert svg.attrs["role"] == "img" and svg.find_all("title")[0].all_text() == "resnet50: architecture"
    nodes = svg.find_all("g", class_="node")
    assert all(g.children[0].tag == "title" and g.children[0].all_text() == g.attrs["data-tip"] for g in nodes)
    closed = [g for g in nodes if g.attrs["data-kind"] in ("block", "stage")]
    assert closed and all(g.attrs.get("tabindex") == "0" and g.attrs.get("role") == "button" for g in closed)
    assert [t.attrs.get("tabindex") for t in svg.find_all("text", class_="frame-title")] == ["0"]


@needs_chromium
def test_report_svg_writes_the_diagram(tmp_path, capsys):
    import xml.etree.ElementTree as ET

    out = tmp_path / "lenet5.svg"
    assert main(["report", "lenet5", "--svg", str(out), "--expand", "all"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out and not list(tmp_path.glob("*.html"))
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == ns + "svg" and root.find(ns + "style") is not None
    nodes = [g for g in root.iter(ns + "g") if "node" in g.get("class", "").split()]
    assert len(nodes) == sum(r.kind != "unused" for r in analyze("lenet5").rows)
    assert not [e for e in root.iter() if e.get("data-tip")]


@pytest.mark.parametrize("argv, message", [
    (["report", "lenet5", "--svg", "x.png"], "--svg 'x.png' should end in .svg"),
    (["report", "--compare", "lenet5", "alexnet", "--svg", "x.svg"], "--svg draws one model's diagram"),
    (["report", "lenet5", "--expand", "all"], "--expand chooses what --svg draws"),
])
def test_svg_user_errors_are_one_line(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@needs_chromium
def test_charts_read_as_the_lecture_draws_them(tmp_path, analyses):
    """Ticks without trailing zeros; receptive field against depth along the longest path (GoogLeNet's branches
    side by side, not a saw-tooth); the per-layer bars fit the page, with their y axis in view."""
    page = tmp_path / "googlenet.html"
    page.write_text(report_html([analyses["googlenet"]]), encoding="utf-8")
    dom = parse_dom(dump_dom(page, "expand=none"))
    _clean(dom)
    ticks = [t.all_text() for g in dom.find_all("g", class_="axis") for t in g.find_all("text")]
    assert not [t for t in ticks if re.search(r"\.0+ ", t)] and "500 k" in ticks and "1 M" in ticks
    chart = next(f for f in dom.find_all("figure") if f.find_all("figcaption")[0].all_text().startswith("Receptive"))
    xs = [float(c.attrs["cx"]) for c in chart.find_all("circle")]
    line = [tuple(map(float, p.split(","))) for p in chart.find_all("polyline")[0].attrs["points"].split()]
    assert [x for x, _ in line] == sorted(x for x, _ in line)  # by depth, left to right
    assert [y for _, y in line] == sorted((y for _, y in line), reverse=True)  # the field only grows
    assert len(xs) > len(line)  # the branches' layers share their depth
    bars = next(f for f in dom.find_all("figure") if f.find_all("figcaption")[0].all_text().startswith("Parameters per"))
    assert float(bars.find_all("svg")[0].attrs["width"]) <= 1240


@needs_chromium
def test_filter_conv_leaves_out_batchnorm_under_conv_modules(tmp_path, analyses):
    page = tmp_path / "googlenet.html"
    text = report_html([analyses["googlenet"]]).replace(
        "</body>", "<script>const f = document.querySelector('input.filter'); f.value = 'conv';"
                   "f.dispatchEvent(new Event('input'));</script></body>")
    page.write_text(text, encoding="utf-8")
    dom = parse_dom(dump_dom(page, "expand=none"))
    body = dom.find_all("table", class_="layers")[0].find_all("tbody")[0]
    types = [tr.find_all("td")[2].all_text() for tr in body.find_all("tr")]
    assert set(types) == {"Conv2d"}  # the auxiliary heads' convolutions too (not called), no BatchNorm2d of conv1.bn
    assert len(types) == sum(r.type == "Conv2d" for r in analyses["googlenet"].rows) == 59


def test_svg_without_chromium_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNZOO_CHROMIUM", "no-such-chromium-binary")
    assert main(["report", "lenet5", "--svg", str(tmp_path / "l.svg")]) == 2
    err = capsys.readouterr().err
    assert "--svg draws the diagram in headless Chromium and found none" in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())
