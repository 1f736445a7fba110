"""The figures the README and docs quote equal the JSON the commands beside them wrote (committed under results/)."""

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def table(path: Path, header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header line starts with `header`, cells without bold marks."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("**", "") for cell in line.strip("|").split("|")])
    return rows


def result(name: str):
    """A JSON file under results/."""
    return json.loads((ROOT / "results" / name).read_text())


def runs(name: str) -> dict[str, dict]:
    return {run["strategy"]: run for run in result(name)}


def prose(path: str) -> str:
    """A page's text with its line breaks folded, so a sentence is found wherever the page wraps it."""
    return " ".join((ROOT / path).read_text().split())


def spec_of(cell: str) -> str:
    return re.search(r"`([^`]+)`", cell).group(1)


def on_full_grid(spec: str) -> str:
    return spec[:-1] + ";t=0-999)" if spec.endswith(")") else spec + "(t=0-999)"


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def three_figures(value: float) -> str:
    return f"{value:.{max(0, 2 - math.floor(math.log10(value)))}f}"


@pytest.mark.parametrize(
    ("path", "header"),
    [("README.md", "| command | strategy it runs |"), ("docs/results/fast_default.md", "| model | asked |")],
)
def test_the_fast_default_tables_are_its_json(path, header):
    found = result("fast_default.json")["rows"]
    clean = {
        (r["model"], f"{r['nfe_per_image']:,.0f}"): r for r in found if r["corruption"] == "none" and r["images"] == 424
    }
    reference = clean[("glyphs", "3,392")]
    rows = table(ROOT / path, header)
    assert len(rows) >= 5
    for cells in rows:
        model = re.search(r"--model ([\w.-]+)", cells[0]).group(1) if path == "README.md" else cells[0]
        run = clean[(model, cells[-3])]
        top1 = next(cell for cell in cells if cell.endswith("%"))
        assert [top1, cells[-2]] == [percent(run["top1"]), three_figures(run["gmacs_per_image"])]
        assert cells[-1] == f"{reference['gmacs_per_image'] / run['gmacs_per_image']:,.1f}×"


def test_the_strategies_sweep_table_is_the_sweep_json():
    sweep = runs("glyphs_sweep.json")
    rows = table(ROOT / "docs/results/strategies.md", "| strategy | timesteps | top-1 | NFEs/image | vs C_E")
    assert len(rows) == len(sweep)
    for cells in rows:
        spec = spec_of(cells[0])
        run = sweep[on_full_grid(spec) if cells[1] == "0–999" else spec]
        assert cells[2:4] == [percent(run["top1"]), f"{run['nfe_per_image']:,.0f}"], spec


def test_the_digits_table_is_its_json():
    found = runs("digits_strategies.json")
    for cells in table(ROOT / "docs/results/digits.md", "| strategy | images | top-1"):
        run = found[spec_of(cells[0])]
        assert cells[1:6] == [
            str(run["n_images"]),
            percent(run["top1"]),
            percent(run["top5"]),
            f"{run['nfe_per_image']:.1f}",
            f"{run['seconds_per_image']:.3f}",
        ]


def test_the_all_class_tables_are_their_json():
    found = result("all_class_heads.json")["rows"]
    reference = found[0]
    clean = {(r["model"], r["strategy"]): r for r in found if r["corruption"] == "none" and r["images"] == 424}
    rows = table(ROOT / "docs/results/all_class.md", "| model | strategy | top-1 |")
    assert len(rows) == len(clean)
    for cells in rows:
        run = clean[(cells[0], spec_of(cells[1]))]
        assert cells[2:5] == [
            percent(run["top1"]),
            percent(run["top5"]),
            f"{100 * (run['top1'] - reference['top1']):+.2f}",
        ]
        assert cells[6:] == [
            three_figures(run["gmacs_per_image"]),
            f"{reference['gmacs_per_image'] / run['gmacs_per_image']:,.1f}×",
        ]
    live = {
        (r["model"], r["severity"]): r
        for r in found
        if r.get("severity") is not None and not r["asked"].startswith("exhaustive(n=32) (")
    }
    for cells in table(ROOT / "docs/results/all_class.md", "| severity |"):
        for model, cell in zip(("glyphs-allclass", "glyphs", "plain-glyphs"), cells[1:4]):
            assert cell == percent(live[(model, int(cells[0]))]["top1"]), (model, cells[0])


def test_the_ranking_term_table_is_its_json():
    folder = ROOT / "results/all_class_ranking"
    rows = table(ROOT / "docs/results/all_class.md", "| `--rank-weight` |")
    assert len(rows) == 6
    for cells in rows:
        name = f"rank-{cells[0]}" + ("-3600" if cells[1] == "3,600" else "")
        run = json.loads((folder / f"{name}.json").read_text())
        assert run["n_images"] == 424 and run["strategy"] == "exhaustive(n=32)"
        assert cells[2:4] == [percent(run["top1"]), percent(run["top5"])], name
        noisy = folder / f"{name}-noise3.json"
        assert cells[4] == (percent(json.loads(noisy.read_text())["top1"]) if noisy.is_file() else ""), name


def test_the_weighting_table_is_its_json():
    found = {(r["weighting"], r["strategy"]): r for r in result("weighting_glyphs.json")["rows"]}
    rows = table(ROOT / "docs/engine.md", "| weighting | exhaustive(n=8)")
    assert [cells[0] for cells in rows] == ["uniform", "clark", "learned"]
    for cells in rows:
        assert cells[1:] == [percent(found[(cells[0], f"exhaustive(n={n})")]["top1"]) for n in (8, 16, 32)]


def test_the_combined_speedup_table_is_its_json():
    found = {(r["model"].split()[0], r["strategy"]): r for r in result("combined_speedup.json")}
    ex32, ex64 = found[("unpruned", "exhaustive(n=32)")], found[("unpruned", "exhaustive(n=64;t=0-999)")]
    rows = table(
        ROOT / "docs/results/pruning.md", "| model | strategy | top-1 | NFEs/image | GMACs/image | less compute than"
    )
    assert len(rows) == len(found) == 7
    for cells in rows:
        run = found[(cells[0], spec_of(cells[1]))]
        ratios = f"{ex32['compute'] / run['compute']:.1f}× / {ex64['compute'] / run['compute']:.1f}×"
        assert cells[2:] == [
            percent(run["top1"]),
            f"{run['nfe_per_image']:,.0f}",
            f"{run['compute'] / 1e9:.2f}",
            ratios,
        ]


def test_the_harder_pruning_sentence_is_its_json():
    found = result("combined_speedup_ratios.json")
    shipped = {r["strategy"]: r for r in result("combined_speedup.json")}
    text = prose("docs/results/pruning.md")
    reference = next(r for r in found if r["model"] == "unpruned")
    assert reference == shipped[reference["strategy"]]  # reused, not recomputed
    for row in found:
        if row["model"] == "pruned glyphs-pruned":  # the shipped model repeats the combined table
            assert row["top1"] == shipped[row["strategy"]]["top1"], row["strategy"]
    harder = [r for r in found if r["model"] == "pruned glyphs-pruned-r040-2200"]
    assert len(harder) == 3
    (first, second, hdc) = harder
    assert (
        f"gives {percent(first['top1'])} at {first['nfe_per_image']:.0f} NFEs "
        f"({reference['compute'] / first['compute']:.1f}× less compute than ex(32)), "
        f"{percent(second['top1'])} at {second['nfe_per_image']:.0f} "
        f"({reference['compute'] / second['compute']:.1f}×) and {percent(hdc['top1'])} with the HDC descent "
        f"({reference['compute'] / hdc['compute']:.1f}×)"
    ) in text


def test_the_tree_levels_table_is_its_json():
    found = result("tree_levels.json")["rows"]
    by_key = {(r["tree"], r["mode"], str(r["level"])): r for r in found}
    rows = table(ROOT / "docs/results/glyphs.md", "| tree | conditioning | level | nodes |")
    assert len(rows) == len(found) >= 10
    for cells in rows:
        run = by_key[(cells[0].split()[0], cells[1].split()[0], cells[2])]
        assert cells[3:] == [
            str(run["nodes"]),
            *(f"{100 * run[k]:.1f}%" for k in ("first", "top_fraction", "within_std")),
        ]


@pytest.mark.parametrize(
    ("name", "size", "count"), [("didicm_corruptions.json", "100%", 7), ("didicm_corruptions_25.json", "25%", 3)]
)
def test_the_didicm_noise_tables_are_their_json(name, size, count):
    found = result(name)["runs"]
    by_key = {(r["row"], r["severity"]): r for r in found if r["data"] == size}
    rows = table(ROOT / "docs/results/didicm.md", f"| {size} of the training data | NFEs | 0 |")
    assert len(rows) == count
    (gaps,) = [g["gap_mean"] for g in result(name)["gaps"] if g["data"] == size]
    quoted = ", ".join(f"{g:+.1f}".replace("-", "−") for g in gaps)
    after = {"100%": "** with all the data", "25%": " with 25%"}[size]  # the CP-8 minus plain sentence
    assert quoted + after in (ROOT / "docs/results/didicm.md").read_text()
    for cells in rows:
        for severity, cell in enumerate(cells[2:]):
            run = by_key[(cells[0].replace("`", ""), severity)]
            assert cell == f"{100 * run['top1']:.1f}% ({100 * run['top5']:.0f}%)", (cells[0], severity)
        assert cells[1] == f"{run['nfe_per_image']:,.0f}"


@pytest.mark.parametrize(("size", "count"), [("100%", 5), ("25%", 3)])
def test_the_didicm_three_seed_tables_are_their_json(size, count):
    found = result("didicm_corruptions_seeds.json")
    header = f"| {size} of the training data, three training seeds | NFEs | 0 |"
    rows = table(ROOT / "docs/results/didicm.md", header)
    assert len(rows) == count
    for cells in rows:
        for severity, cell in enumerate(cells[2:]):
            key = (size, cells[0], severity)
            top1 = [r["top1"] for r in found["runs"] if (r["data"], r["row"], r["severity"]) == key]
            assert len(top1) == 3 and all(r["n_images"] == 424 for r in found["runs"])
            mean = f"{100 * sum(top1) / 3:.1f}%"
            assert cell == f"{mean} ({100 * min(top1):.1f}–{100 * max(top1):.1f})", (cells[0], severity)
    (gaps,) = [g for g in found["gaps"] if g["data"] == size]
    text = prose("docs/results/didicm.md")
    signed = lambda values: ", ".join(f"{v:+.1f}".replace("-", "−") for v in values)  # noqa: E731
    assert f"{size} of the data: **{signed(gaps['gap_mean'])}** (seed 0: " in text
    for k in range(3):
        assert f"seed {k}: {signed(g[k] for g in gaps['gap_per_seed'])}" in text


def test_the_downsample_sentence_is_its_json():
    found = result("didicm_downsample.json")["runs"]
    top1 = {r["row"]: f"{100 * r['top1']:.1f}%" for r in found if r["severity"] == 1}
    text = prose("docs/results/didicm.md")
    assert f"the plain network falls to {top1['plain']} at severity 1" in text
    assert f"DiDiCM-CP(8) to {top1[GAP_ROW]}" in text
    assert "from severity 2 on every row is below 12%" in text
    assert max(r["top1"] for r in found if r["severity"] >= 2) < 0.12


def test_the_designed_and_induced_tree_table_is_their_json():
    designed, induced = runs("glyphs_bench_designed.json"), runs("glyphs_bench_induced.json")
    rows = table(ROOT / "docs/results/strategies.md", "| HDC spec | designed tree")
    assert len(rows) == len(designed) == len(induced) == 3
    for cells in rows:
        spec = spec_of(cells[0])
        for cell, run in zip(cells[1:], (designed[spec], induced[spec])):
            assert cell == f"{percent(run['top1'])} @ {run['nfe_per_image']:.0f}", spec


def test_the_pruning_methods_table_is_its_json():
    found = result("pruning_methods.json")
    by_model = {r["model"]: r for r in found["rows"]}
    base = by_model["original"]
    rows = table(ROOT / "docs/results/pruning.md", "| model | params | MACs/call | top-1 |")
    assert len(rows) == len(by_model) == 7
    for cells in rows:
        run = by_model[cells[0]]
        macs = f"{run['macs'] / 1e6:.2f}M ({base['macs'] / run['macs']:.2f}×)"
        seconds = f"{run['seconds_per_call'] / base['seconds_per_call']:.2f}"
        assert cells[1:] == [
            f"{run['params'] / 1e3:.0f}K",
            macs,
            percent(run["top1"]),
            percent(run["top5"]),
            f"{run['ssim']:.3f}",
            seconds,
        ]


def test_the_fully_fine_tuned_pruned_model_is_its_json():
    text = (ROOT / "docs/results/pruning.md").read_text()
    for name in ("glyphs_pruned_212_cheap.json", "glyphs_pruned_212_default.json", "glyphs_212_default.json"):
        run = result(name)
        assert (
            run["model"] == ("glyphs" if name.startswith("glyphs_212") else "glyphs-pruned") and run["n_images"] == 212
        )
        assert percent(run["top1"]) in text and percent(run["top5"]) in text, name


def test_the_lockstep_timings_are_their_json():
    found = result("glyphs_lockstep.json")
    text = prose("docs/results/strategies.md")
    ms = {r["strategy"]: 1000 * r["seconds_per_image"] / r["nfe_per_image"] for r in found}
    beams = [v for k, v in ms.items() if "beam" in k]
    assert f"cost {min(beams):.2f}–{max(beams):.2f} ms per NFE" in text
    assert (
        f"{ms['exhaustive(n=16)']:.2f} for exhaustive and {ms['adaptive(keep=10,1;n=4,16)']:.2f} for adaptive" in text
    )
    spans = []
    for reference in found[:2]:  # exhaustive, adaptive
        ratios = [
            r["seconds_per_image"] / reference["seconds_per_image"] * reference["nfe_per_image"] / r["nfe_per_image"]
            for r in found[2:]
        ]
        spans.append(f"{min(ratios):.2f}–{max(ratios):.2f}×")
    assert f"within {spans[0]} of its NFE ratio against exhaustive and {spans[1]} against adaptive" in text


@pytest.mark.parametrize(
    "name, model", [("serve_load.json", "glyphs"), ("serve_load_allclass.json", "glyphs-allclass")]
)
def test_the_load_check_tables_are_their_json(name, model):
    run = result(name)
    path = ROOT / "docs/explain.md"
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in path.read_text().splitlines()
        if line.startswith(f"| {model} | ")
    ]
    assert rows and len(rows) == len(run["levels"])
    for cells, level in zip(rows, run["levels"]):
        assert cells[1:] == [
            str(level["clients"]),
            f"{level['requests_per_second']:.2f}",
            f"{level['p50_seconds']:.2f} s",
            f"{level['p95_seconds']:.2f} s",
            f"{level['answered_with_own_image']}/{level['requests']}",
        ]
    text = " ".join(path.read_text().split())
    ceiling = run["batching_ceiling"]
    assert ceiling["same_predictions"] and run["healthy_after_bad_uploads"]
    assert f"{run['throughput_ratio_most_vs_one_client']:.2f}×" in text and f"{ceiling['ceiling']:.2f}×" in text
    assert f"{ceiling['seconds_per_image_one_per_call']:.3f} s" in text


def test_the_budget_search_is_its_json():
    run = result("budget_strategy.json")
    text = prose("docs/results/pruning.md")
    reference, chosen, rows = run["reference"], run["chosen"], run["candidates"]
    assert f"`exhaustive(n=32)` scores {percent(reference['top1'])}" in text
    assert f"replays {len(rows)} candidates" in text and f"({run['budget_nfe']:.0f} NFEs/image" in text
    points = f"{100 * (chosen['top1'] - reference['top1']):+.2f}".replace("-", "−")
    assert f"`{chosen['strategy']}`" in text
    assert f"scores {percent(chosen['top1'])} on the pruned model at {chosen['nfe_per_image']:.0f} NFEs" in text
    assert f"({points} points, {chosen['compute_ratio']:.1f}× less compute)" in text
    within = [r for r in rows if r["nfe_per_image"] <= run["budget_nfe"]]
    for kind in ("hdc(", "beam("):
        best = next(r for r in within if r["strategy"].startswith(kind))
        assert f"{percent(best['top1'])} (`{best['strategy']}`, {best['nfe_per_image']:.0f} NFEs" in text, kind
    best = next(r for r in within if r["strategy"].startswith("hdc+beam("))
    assert f"the best descent+beam {percent(best['top1'])}" in text


def test_the_unpruned_budget_search_sentence_is_its_json():
    run = result("budget_strategy_unpruned.json")
    text = prose("docs/results/pruning.md")
    chosen, within = run["chosen"], [r for r in run["candidates"] if r["nfe_per_image"] <= run["budget_nfe"]]
    assert run["model"] == "glyphs" and f"has {run['budget_nfe']:.0f} NFEs/image to spend" in text
    best = f"`{chosen['strategy']}` at {chosen['nfe_per_image']:.0f} NFEs, scores {percent(chosen['top1'])}"
    assert f"its best, {best}" in text
    assert f"{100 * (run['reference']['top1'] - chosen['top1']):.1f} points below exhaustive" in text
    adaptive = max((r for r in within if r["strategy"].startswith("adaptive(")), key=lambda r: r["top1"])
    assert f"(the best adaptive schedule: {percent(adaptive['top1'])})" in text


def test_the_engine_page_reads_the_loss_rule_off_the_shipped_glyphs_front():
    from diffclass.strategies.auto import choose

    front = json.loads((ROOT / "src/diffclass/assets/glyphs/diffclass.json").read_text())["front"]
    points, text = front["points"], prose("docs/engine.md")
    old, new = choose(points), choose(points, reference_top1=front["reference_top1"])
    best = max(p["top1"] for p in points)
    assert f"best is {percent(best)}: counted from it, the default would be a {old['nfe_per_image']:.0f}" in text
    assert f"from exhaustive's {percent(front['reference_top1'])}, it is the {new['nfe_per_image']:.0f}-NFE" in text
    from diffclass.strategies.auto import pick

    chosen = pick(front)
    assert f"runs the {chosen['nfe_per_image']:.0f}-NFE `{chosen['spec']}`" in text


GAP_ROW = "DiDiCM cp(steps=8)"


def test_the_didicm_times_sentence_is_its_json():
    found = result("didicm_times.json")
    top1 = {(r["c_t"], r["t"]): f"{100 * r['top1']:.1f}%" for r in found["rows"] if r["model"] == "didicm-glyphs-p0"}
    text = prose("docs/results/didicm.md")
    assert found["images"] == 424
    assert f"flat over time ({top1['random', 1.0]} at t = 1, {top1['random', 1e-5]} at t = 1e-5)" in text
    assert f"({top1['true', 1e-5]} against {top1['random', 1e-5]} at t = 1e-5)" in text


def test_the_didicm_soft_label_table_is_its_json():
    folder = ROOT / "results/didicm_soft_labels"
    rows = table(ROOT / "docs/results/didicm.md", "| training | plain | DiDiCM cp(steps=1) |")
    assert len(rows) == 3
    shipped = {
        r["row"]: r for r in result("didicm_corruptions.json")["runs"] if r["data"] == "100%" and r["severity"] == 0
    }
    assert rows[0][1:] == [f"{100 * shipped[row]['top1']:.1f}%" for row in ("plain", "DiDiCM cp(steps=1)", GAP_ROW)]
    for cells, kind in zip(rows[1:], ("mix", "ls")):
        plain = json.loads((folder / f"plain-{kind}.json").read_text())
        cp = {run["strategy"]: run for run in json.loads((folder / f"didicm-{kind}.json").read_text())}
        expected = [plain["top1"], cp["cp(steps=1)"]["top1"], cp["cp(steps=8)"]["top1"]]
        assert cells[1:] == [percent(v) for v in expected], kind


def test_the_glyphs_exhaustive_table_is_its_json():
    rows = table(ROOT / "docs/results/glyphs.md", "| command | top-1 | top-5 | NFEs/image |")
    assert len(rows) == 2
    for cells in rows:
        run = json.loads((ROOT / re.search(r"--json (\S+)`", cells[0]).group(1)).read_text())
        assert run["n_images"] == 424 and f'--strategy "{run["strategy"]}"' in cells[0]
        assert cells[1:] == [percent(run["top1"]), percent(run["top5"]), f"{run['nfe_per_image']:,.0f}"]


def test_the_shipped_glyphs_strategy_table_is_its_json():
    found = result("glyphs_bench_shipped106.json")
    rows = table(ROOT / "docs/results/strategies.md", "| strategy | top-1 | NFEs/image | NFE ratio")
    assert len(rows) == len(found) and all(run["n_images"] == 106 for run in found)
    reference = found[0]
    for cells, run in zip(rows, found):
        assert spec_of(cells[0]).split("(")[0] == run["strategy"].split("(")[0]
        assert cells[1:] == [
            percent(run["top1"]),
            f"{run['nfe_per_image']:,.0f}",
            f"{run['nfe_per_image'] / reference['nfe_per_image']:.3f}",
            f"{run['seconds_per_image'] / reference['seconds_per_image']:.3f}",
        ]
    worst = max(
        abs(
            run["seconds_per_image"]
            / reference["seconds_per_image"]
            * reference["nfe_per_image"]
            / run["nfe_per_image"]
            - 1
        )
        for run in found
    )
    text = prose("docs/results/strategies.md")
    assert f"Every wall-time ratio is within {math.ceil(100 * worst)}% of its NFE ratio." in text


def test_the_digits_default_sentence_is_its_json():
    run = result("digits_default.json")
    exhaustive = runs("digits_strategies.json")["exhaustive(n=64)"]
    text = prose("docs/results/digits.md")
    loss = f"{100 * (run['top1'] - exhaustive['top1']):+.2f}".replace("-", "−")
    assert (
        f"runs `{run['strategy']}` instead: {percent(run['top1'])} top-1, {percent(run['top5'])} top-5 at "
        f"{run['nfe_per_image']:.0f} NFEs/image, {exhaustive['nfe_per_image'] / run['nfe_per_image']:.1f}× "
        f"fewer than exhaustive ({loss} points"
    ) in text
    assert f"({run['seconds_per_image']:.3f} s/image)" in text


def test_the_calibration_sentence_is_the_sweep_json():
    sweep = runs("glyphs_sweep.json")
    text = prose("docs/results/glyphs.md")
    full, window = sweep["exhaustive(n=16;t=0-999)"], sweep["exhaustive(n=16)"]
    assert full["n_images"] == window["n_images"] == 106
    assert f"({percent(full['top1'])} against {percent(window['top1'])} for `exhaustive(n=16)` on the first 106" in text


def test_the_misclassified_glyph_sentence_is_its_json():
    found = result("explain_glyph_wrong.json")
    winner, runner_up = found["top"][:2]
    text = prose("docs/explain.md")
    assert (winner["name"], runner_up["name"]) == ("Greek capital Λ", "Latin capital A")
    assert (
        f"a Latin A read as Greek Λ at {100 * winner['probability']:.1f}%, the true class second at "
        f"{100 * runner_up['probability']:.1f}%" in text
    )


def test_the_calibration_paragraph_is_its_json():
    found = result("glyphs_calibration.json")
    text = prose("docs/results/glyphs.md")
    peak = max(range(len(found["timesteps"])), key=found["single_top1"].__getitem__)
    assert f"single timesteps peak at t ≈ {found['timesteps'][peak]} ({100 * found['single_top1'][peak]:.0f}%)" in text
    late = [a for t, a in zip(found["timesteps"], found["single_top1"]) if t >= 703]
    assert "fall to about 10% and below above t ≈ 703" in text and max(late) < 0.11
    windows = {(lo, hi): acc for lo, hi, acc in found["windows"]}
    (lo, hi), best = found["best_window"], max(windows.values())
    assert (
        f"best window of 8 consecutive timesteps is [{lo}, {hi}] ({100 * best:.1f}%), then the shipped [46, 265] "
        f"({100 * windows[46, 265]:.1f}%), both above all 32 timesteps ({100 * found['full_range_top1']:.1f}%)" in text
    )


def test_the_zero_shot_checks_are_their_json():
    text = prose("docs/zero-shot.md")
    sd = result("zero_shot_check.json")["summaries"]
    assert all((s["n_images"], s["strategy"], s["nfe_per_image"]) == (100, "exhaustive(n=16)", 64) for s in sd.values())
    assert f"**{100 * sd['uniform']['top1']:.1f}% top-1** (4 classes, `exhaustive(n=16)`, 64 NFEs/image" in text
    assert sd["clark"]["top1"] == sd["learned"]["top1"]
    assert f"{100 * sd['clark']['top1']:.1f}% with `clark` and with `learned` ones" in text
    sd3 = result("zero_shot_check_sd3.json")["summaries"]
    rows = table(ROOT / "docs/zero-shot.md", "| weighting | top-1 (100 held-out images")
    assert {cells[0].strip("`"): cells[1] for cells in rows} == {w: f"{100 * s['top1']:.1f}%" for w, s in sd3.items()}
    assert all(s["n_images"] == 100 for s in sd3.values())


def test_the_three_seed_reading_is_its_json():
    found = result("didicm_corruptions_seeds.json")
    mean = {
        (r, s): sum(x["top1"] for x in found["runs"] if (x["data"], x["row"], x["severity"]) == ("100%", r, s)) / 3
        for r in ("plain", "DiDiCM cp(steps=2)", GAP_ROW, "DiDiCM cl(N=16;steps=2)")
        for s in range(6)
    }
    text = prose("docs/results/didicm.md")
    assert "CP-4 is within 0.5 points of CP-8 at every severity for both data sizes" in text
    assert "CP-2 is within 1.1 points of CP-8 at every severity on the mean" in text
    assert max(abs(mean["DiDiCM cp(steps=2)", s] - mean[GAP_ROW, s]) for s in range(6)) < 0.0115
    assert "CL with 16 chains costs 4× CP-8 and is below it at every severity with all the data" in text
    assert all(mean["DiDiCM cl(N=16;steps=2)", s] < mean[GAP_ROW, s] for s in range(6))
    (gaps,) = [g for g in found["gaps"] if g["data"] == "100%"]
    assert "every seed gains at every severity from 2 to 5" in text
    assert all(v > 0 for per_seed in gaps["gap_per_seed"][2:] for v in per_seed)
    assert f"each seed +{min(gaps['gap_per_seed'][5]):.1f} or more" in text
    (small,) = [g for g in found["gaps"] if g["data"] == "25%"]
    losses, gains = [-v for v in small["gap_mean"][:3]], small["gap_mean"][3:]
    assert (
        f"it loses {min(losses):.1f}–{max(losses):.1f} points at severities 0–2 and gains "
        f"{min(gains):.1f}–{max(gains):.1f} at 3–5"
    ) in text and min(losses + gains) > 0
    assert "every seed gaining at severities 4 and 5" in text
    assert min(small["gap_per_seed"][4] + small["gap_per_seed"][5]) > 0
    quarter = f"+{small['gap_mean'][5]:.1f} (each seed +{min(small['gap_per_seed'][5]):.1f} or more) and "
    assert quarter + f"{small['gap_mean'][0]:.1f} with a quarter".replace("-", "−") in text
    assert all(small["gap_mean"][s] < gaps["gap_mean"][s] for s in (3, 4, 5))  # "narrows DiDiCM's lead"
    cp4 = [r for r in found["runs"] if r["row"] == "DiDiCM cp(steps=4)"]
    for size in ("100%", "25%"):
        for s in range(6):
            pair = [
                sum(r["top1"] for r in found["runs"] if (r["data"], r["row"], r["severity"]) == (size, row, s))
                for row in ("DiDiCM cp(steps=4)", GAP_ROW)
            ]
            assert abs(pair[0] - pair[1]) / 3 < 0.005 and len(cp4) == 36


def test_the_tuning_figures_are_the_shipped_fronts():
    from diffclass.strategies.auto import choose, loss_bound, pick

    def front(model: str) -> dict:
        return json.loads((ROOT / f"src/diffclass/assets/{model}/diffclass.json").read_text())["front"]

    glyphs, pruned, student, digits = front("glyphs"), front("glyphs-pruned"), front("glyphs-allclass"), front("digits")
    text = prose("docs/results/fast_default.md")
    assert all(f["tuned_on"] == "folder:runs/unseen-glyphs" and f["images"] == 400 for f in (glyphs, pruned, student))
    assert (
        f"(exhaustive there: {percent(glyphs['reference_top1'])} for `glyphs`, {percent(pruned['reference_top1'])} "
        f"for `glyphs-pruned`, {percent(student['reference_top1'])} for the student)"
    ) in text
    counts = f"{glyphs['candidates']:,} candidates for `glyphs` (stage sizes about √2 apart), {student['candidates']:,}"
    assert counts in text and f"and {pruned['candidates']:,} for `glyphs-pruned`" in text
    chosen, by_reference = pick(glyphs), choose(glyphs["points"], reference_top1=glyphs["reference_top1"])
    by_best, best = choose(glyphs["points"]), max(p["top1"] for p in glyphs["points"])
    assert (
        f"({percent(glyphs['reference_top1'])}), the cheapest point within 0.5 points is a "
        f"{by_reference['nfe_per_image']:.0f}-NFE schedule, and counting it from the front's best ({percent(best)}, "
        f"a maximum over {glyphs['candidates']:,} noisy replays) a {by_best['nfe_per_image']:.0f}-NFE one"
    ) in text
    bound = 100 * loss_bound(chosen, glyphs["images"], 0.9)
    assert (
        f"The default scores {percent(chosen['top1'])} on the tuning table ({chosen['gained']} images gained and "
        f"{chosen['lost']} lost against exhaustive, bound {bound:.2f} points)"
    ) in text
    assert max(by_reference["nfe_per_image"], by_best["nfe_per_image"]) < chosen["nfe_per_image"]
    from diffclass.strategies.auto import loss_bound, pick

    chosen, text = pick(digits), prose("docs/results/digits.md")
    old = next(p for p in digits["points"] if p["spec"] == "adaptive(keep=5,2,1;n=2,3,6)")
    assert f"tuned on those {digits['images']} images only" in text and digits["tuned_on"].endswith("digits")

    def said(point):
        bound = 100 * loss_bound(point, digits["images"], 0.9)
        return f"gains {point['gained']} images and loses {point['lost'] or 'none'} (bound {bound:.1f} points)"

    assert f"`{chosen['spec']}` {said(chosen)}" in text and f"schedule {said(old)}" in text


def test_the_position_table_is_its_json():
    rows = result("position_glyphs.json")["rows"]
    names = {
        "plain-glyphs": "`plain-glyphs` (1 call)",
        "runs/plain-glyphs-shift": "`plain-glyphs-shift`, a first training (1 call)",
        "didicm-glyphs-p0": "`didicm-glyphs-p0` `cp(steps=8)`",
        "runs/didicm-glyphs-shift": "`didicm-glyphs-shift` (p0) `cp(steps=8)`",
        "glyphs-allclass": "`glyphs-allclass` `exhaustive(n=32)`",
    }
    quoted = {r[0]: r[1:] for r in table(ROOT / "docs/results/glyphs.md", "| model | as drawn |")}
    for model, label in names.items():
        mine = [r for r in rows if r["model"] == model]
        assert [r["images"] for r in mine] == [424] * 5
        assert quoted[label] == [f"{100 * r['top1']:.2f}%" for r in mine], model


def test_the_paper_head_position_table_and_its_noise_trade_are_their_json():
    rows = result("position_didicm.json")["rows"]
    quoted = {
        r[0]: r[1:] for r in table(ROOT / "docs/results/glyphs.md", "| the paper's head and the augmented twins |")
    }
    assert len(quoted) == len({r["model"] for r in rows}) == 5
    for model in {r["model"] for r in rows}:
        label = next(k for k in quoted if k.startswith(f"`{model.removeprefix('runs/')}`"))
        mine = [r for r in rows if r["model"] == model]
        assert [r["images"] for r in mine] == [424] * 5
        assert label.split("`")[3] == mine[0]["strategy"] if label.count("`") == 4 else mine[0]["strategy"] == "plain"
        assert quoted[label] == [f"{100 * r['top1']:.2f}%" for r in mine], model
    noise = {(r["model"], r["severity"]): r["top1"] for r in result("didicm_shift_noise.json")["rows"]}
    shipped = {
        (r["model"], r["severity"]): r["top1"] for r in result("didicm_shipped.json")["rows"] if "euler" in r["spec"]
    }
    text = prose("docs/results/glyphs.md")
    said = (
        f"it keeps {percent(noise['runs/didicm-glyphs-scores-shift', 3])} against the shipped model's "
        f"{percent(shipped['didicm-glyphs', 3])}"
    )
    assert said in text and f"below the plain twin's {percent(noise['plain-glyphs', 3])}" in text
    twin = result("plain_glyphs_shift_noise3.json")
    assert twin["model"] == "plain-glyphs-shift" and twin["dataset"] == "glyphs+noise:3" and twin["n_images"] == 424
    assert f"{percent(twin['top1'])} at noise 3 against `plain-glyphs`' {percent(noise['plain-glyphs', 3])}" in text


def test_the_emoji_position_table_is_its_json():
    quoted = table(ROOT / "docs/results/emoji.md", "| emoji model | images | as drawn | centre |")
    runs_ = result("position_emoji.json")["rows"] + result("position_emoji_100.json")["rows"]
    models = list(dict.fromkeys((r["model"], r["strategy"], r["images"]) for r in runs_))
    assert len(quoted) == len(models) == 6
    for cells, (model, strategy, images) in zip(quoted, models):
        mine = [r for r in runs_ if (r["model"], r["strategy"], r["images"]) == (model, strategy, images)]
        assert [r["placement"] for r in mine] == ["as drawn", "centre", "shift:1", "shift:2", "shift:3"]
        assert cells[0].startswith(f"`{model}`") and cells[1] == str(images)
        assert cells[2:] == [percent(r["top1"]) for r in mine], model


def test_the_emoji_plain_twins_table_is_their_json():
    plain, aug = result("emoji/plain.json"), result("emoji/plain_aug.json")
    rows = {r[0].split(" (")[0]: r[1:] for r in table(ROOT / "docs/results/emoji.md", "| test style |")}
    for run in (plain, aug):
        assert run["dataset"] == "emoji" and run["n_images"] == 681
    assert (plain["model"], aug["model"]) == ("plain-emoji", "runs/plain-emoji-aug")

    def cells(row):
        return [f"{100 * row['top1']:.2f}%", f"{100 * row['top5']:.2f}%"]

    for style in plain["by_group"]:
        n = str(plain["by_group"][style]["n_images"])
        assert rows[style] == [n, *cells(plain["by_group"][style]), *cells(aug["by_group"][style])], style
    assert rows["all"] == ["681", *cells(plain), *cells(aug)]
    for name in ("emoji/plain_held_out.json", "emoji/plain_aug_held_out.json"):
        held = result(name)
        assert held["held_out"] == ["noto"] and held["n_images"] == 227
        assert f"{100 * held['top1']:.2f}%" in prose("docs/results/emoji.md")
    assert f"{100 * result('emoji/plain_held_out.json')['top1']:.2f}% of the 227 drawings of noto" in prose(
        "docs/results/emoji.md"
    )


def test_the_emoji_test_style_table_is_its_json():
    rows = table(ROOT / "docs/results/emoji.md", "| test top-1 | openmoji |")
    files = ("emoji/plain.json", "emoji/prefilter10.json", "emoji/prefilter10_step9000.json")
    files += ("emoji/prefilter10_step14000.json", "emoji/plain_aug.json", "emoji/prefilter10_aug.json")
    models = ("plain-emoji", "emoji", "runs/emoji-9000", "runs/emoji-14000", "runs/plain-emoji-aug", "emoji")
    assert len(rows) == len(files)
    for cells, name, model in zip(rows, files, models):
        run = result(name)
        assert run["model"] == model and run["n_images"] == 681
        styles = [percent(run["by_group"][style]["top1"]) for style in ("openmoji", "fluent-hc", "emojione-mono")]
        assert cells[1:] == [*styles, percent(run["top1"]), percent(run["top5"])], cells[0]
    shipped = result("emoji/prefilter10_step14000.json")
    assert shipped["nfe_per_image"] == 81 and f"{shipped['gmacs_per_image']:.1f} GMACs per image" in prose(
        "docs/results/emoji.md"
    )
    assert f"error of {shipped['ece']:.3f} on the test styles" in prose("docs/results/emoji.md")
    behind_aug, held = result("emoji/prefilter10_aug.json"), result("emoji/held_out_prefilter10_aug.json")
    assert behind_aug["strategy"] == held["strategy"] == "prefilter(by=plain-emoji-aug;k=10;then=exhaustive(n=8))"
    twin_held = result("emoji/plain_aug_held_out.json")
    assert f"{percent(held['top1'])} against {percent(twin_held['top1'])}" in prose("docs/results/emoji.md")


def test_the_promise_table_is_the_digits_json():
    run, exhaustive = result("digits_default.json"), runs("digits_strategies.json")["exhaustive(n=64)"]
    rows = table(ROOT / "docs/results/fast_default.md", "| model | front tuned on | default (test split)")
    digits = next(cells for cells in rows if cells[0] == "`digits`")
    assert digits[2] == f"`{run['strategy']}`, {run['nfe_per_image']:.0f} NFEs"
    assert digits[3:6] == [
        percent(run["top1"]),
        f"{percent(exhaustive['top1'])} (`n=64`)",
        f"{100 * (run['top1'] - exhaustive['top1']):+.2f}".replace("-", "−"),
    ]
    assert digits[6] == ("kept" if exhaustive["top1"] - run["top1"] <= 0.005 + 1e-9 else "broken")


def test_the_own_data_tables_are_their_json():
    fit = result("shapes_fit.json")["done"]["measure"]
    rows = table(ROOT / "docs/own_data.md", "| strategy | held-out top-1")
    assert rows[0][1:] == [
        f"{100 * fit['default']['top1']:.1f}%",
        f"{fit['default']['nfe_per_image']:g}",
        f"{fit['default']['ece']:.3f}",
    ]
    assert rows[0][0].startswith(f"`{fit['default']['strategy']}`")
    tested = table(ROOT / "docs/own_data.md", "| strategy | test top-1")
    for cells, name in zip(tested, ("shapes_default.json", "shapes_budget20.json")):
        run = result(name)
        assert cells[0].startswith(f"`{run['strategy']}`")
        assert cells[1:] == [percent(run["top1"]), f"{run['nfe_per_image']:.0f}", f"{run['ece']:.3f}"]
    refit = table(ROOT / "docs/own_data.md", "| model | 100 new shapes")
    for cells, (first, more) in zip(
        refit,
        (
            ("shapes_held_out_default.json", "shapes_held_out_test2.json"),
            ("shapes_default.json", "shapes_refit_test2.json"),
        ),
    ):
        first, more = result(first), result(more)
        assert cells[0].startswith(f"`{more['model']}`") and first["model"] == more["model"]
        assert cells[1:] == [percent(first["top1"]), percent(more["top1"]), f"{more['ece']:.3f}"]
        assert first["strategy"] == more["strategy"] == "exhaustive(n=64)" and more["n_images"] == 400
    assert len(refit) == 2


ROBUST = {
    "`plain-glyphs` (the plain twin)": "plain-glyphs",
    "`plain-glyphs-aug` (the twin trained with noise)": "plain-glyphs-aug",
    "`didicm-glyphs` (DiDiCM, the paper's head)": "didicm-glyphs",
    "`didicm-glyphs-p0` (DiDiCM, our head)": "didicm-glyphs-p0",
    "`glyphs-allclass` (the all-class student; its default then)": "glyphs-allclass",
    "`plain-glyphs-randaug` (the twin trained with RandAugment)": "plain-glyphs-randaug",
}


RAND = ["plain-glyphs-randaug"]


def robustness_cells(run) -> list[str]:
    """A robustness table's clean top-1, mean corruption top-1, drop and mCE (1 for the baseline itself)."""
    mce = run["against"]["mce"] if "against" in run else 1.0
    return [
        percent(run["clean_top1"]),
        percent(run["mean_corruption_top1"]),
        f"{100 * run['relative_drop']:.1f}%",
        f"{mce:.3f}",
    ]


def test_the_robustness_tables_are_their_json():
    page = ROOT / "docs/results/robustness.md"
    found = {name: result(f"robustness/{name}.json") for name in ROBUST.values()}
    for cells in table(page, "| model | strategy | clean top-1 | mean corruption"):
        run = found[ROBUST[cells[0]]]
        assert cells[1].startswith(f"`{run['strategy']}`")
        assert cells[2:] == robustness_cells(run)
    for cells in table(page, "| corruption | plain-glyphs | plain-glyphs-aug"):
        assert len(cells) == 7
        for cell, name in zip(
            cells[1:],
            ["plain-glyphs", "plain-glyphs-aug", "didicm-glyphs", "didicm-glyphs-p0", "glyphs-allclass", *RAND],
        ):
            rows = [r["top1"] for r in found[name]["rows"] if r["corruption"] == cells[0]]
            assert cell == f"{100 * sum(rows) / len(rows):.1f}", (cells[0], name)


def test_the_severity_three_tables_are_their_json():
    page = ROOT / "docs/results/robustness.md"
    runs_ = {
        "glyphs": result("robustness/glyphs-s3-106.json"),
        "didicm-glyphs": result("robustness/didicm-glyphs-s3-106.json"),
        "didicm-glyphs-p0": result("robustness/didicm-glyphs-p0-s3-106.json"),
        "glyphs-allclass": result("robustness/glyphs-allclass-s3-106.json"),
    }
    runs_["plain-glyphs"] = runs_["glyphs"]["baseline"]
    assert all(r["images"] == 106 for r in runs_.values())
    rows = table(page, "| model (106 images, severity 3) |")
    assert len(rows) == 5
    for cells in rows:
        name = cells[0].split("`")[1]
        run = runs_[name]
        assert cells[2:] == robustness_cells(run), name
    assert len(table(page, "| corruption (severity 3) |")) == 15
    for cells in table(page, "| corruption (severity 3) |"):
        names = ["plain-glyphs", "glyphs", "didicm-glyphs", "didicm-glyphs-p0", "glyphs-allclass"]
        assert len(cells) == 1 + len(names)
        for cell, name in zip(cells[1:], names):
            assert cell == f"{100 * next(r['top1'] for r in runs_[name]['rows'] if r['corruption'] == cells[0]):.1f}"


def test_the_emoji_robustness_tables_are_their_json():
    page = ROOT / "docs/results/robustness.md"
    names = {
        "plain-emoji": "plain-emoji",
        "plain-emoji-aug": "runs/plain-emoji-aug",
        "didicm-emoji": "runs/didicm-emoji",
    }
    rows = table(page, "| emoji model | strategy | clean top-1 |")
    found = {}
    for cells in rows:
        name = cells[0].split("`")[1].removeprefix("runs/")
        run = found[name] = result(f"robustness/{name}.json")
        assert run["model"] == names[name] and run["images"] == 681 and run["dataset"] == "emoji"
        assert cells[1].startswith(f"`{run['strategy']}`")
        assert cells[2:] == robustness_cells(run), name
    assert {"plain-emoji", "plain-emoji-aug"} <= set(found)
    header = next(line for line in page.read_text().splitlines() if line.startswith("| corruption (emoji) |"))
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    assert columns == list(found)
    quoted = table(page, "| corruption (emoji) |")
    assert len(quoted) == 15
    for cells in quoted:
        for cell, name in zip(cells[1:], columns):
            top1 = [r["top1"] for r in found[name]["rows"] if r["corruption"] == cells[0]]
            assert len(top1) == 5 and cell == f"{100 * sum(top1) / 5:.1f}", (cells[0], name)
    at3 = {
        "plain-emoji": result("robustness/plain-emoji-s3-100.json"),
        "plain-emoji-aug": result("robustness/plain-emoji-aug-s3-100.json"),
        "emoji": result("robustness/emoji-s3-100.json"),
    }
    assert {r["images"] for r in at3.values()} == {100}
    for cells in table(page, "| emoji model (100 images, severity 3) |"):
        run = at3[cells[0].split("`")[1]]
        mce = run["against"]["mce"] if "against" in run else 1.0
        assert cells[1].startswith(f"`{run['strategy']}`")
        assert cells[2:] == [percent(run["clean_top1"]), percent(run["mean_corruption_top1"]), f"{mce:.3f}"]
    quoted = table(page, "| corruption (emoji, severity 3) |")
    assert len(quoted) == 15
    for cells in quoted:
        for cell, run in zip(cells[1:], at3.values()):
            assert cell == f"{100 * next(r['top1'] for r in run['rows'] if r['corruption'] == cells[0]):.1f}"


def test_the_confidence_table_is_its_json():
    rows = table(ROOT / "docs/results/confidence.md", "| model | default strategy | test images")
    assert len(rows) == 10
    text = prose("docs/results/confidence.md")
    euler, exact, p0 = (
        result(f"ece/{name}.json") for name in ("didicm-glyphs", "didicm-glyphs-exact", "didicm-glyphs-p0")
    )
    assert euler["top1"] == exact["top1"] and exact["strategy"] == "cp(steps=8)"
    assert f"states {100 * euler['mean_confidence']:.1f}% on the mean and is right {percent(euler['top1'])}" in text
    assert f"states {100 * exact['mean_confidence']:.1f}% (ECE {exact['ece']:.3f})" in text
    assert f"{100 * p0['mean_confidence']:.1f}% against {percent(p0['top1'])} (ECE {p0['ece']:.3f})" in text
    for cells in rows:
        run = result(f"ece/{cells[0].strip('`')}.json")
        assert cells[1] == f"`{run['strategy']}`"
        assert cells[2:5] == [str(run["n_images"]), percent(run["top1"]), f"{run['ece']:.3f}"]


ATTACK_COLUMNS = ("pgd-linf-2_255", "pgd-linf-4_255", "pgd-linf-8_255", "pgd-l2-0.5", "apgd-dlr-8_255")


def test_the_attack_table_is_its_json():
    page = ROOT / "docs/results/robustness.md"
    rows = table(page, "| model | what is attacked | images | clean top-1 |")
    emoji = table(page, "| emoji model | what is attacked | images | clean top-1 |")
    assert len(rows) >= 3 and len(emoji) == 4
    for cells in rows + emoji:
        name = cells[0].strip("`").removeprefix("runs/")
        runs_ = [result(f"attacks/{name}-{column}.json")["summary"] for column in ATTACK_COLUMNS]
        assert {r["images"] for r in runs_} == {int(cells[2])}
        assert {percent(r["clean_top1"]) for r in runs_} == {cells[3]}
        assert cells[1].startswith(f"`{runs_[0]['strategy']}`") and all(r["gradient_nonzero"] == 1.0 for r in runs_)
        assert cells[4:] == [percent(r["robust_top1"]) for r in runs_], name
    text = prose("docs/results/robustness.md")
    for steps in (5, 20):
        run = result(f"attacks/plain-glyphs-pgd-linf-8_255-steps{steps}.json")["summary"]
        assert f"{steps} steps {percent(run['robust_top1'])}" in text
    assert (
        f"32/255 leaves it {percent(result('attacks/plain-glyphs-pgd-linf-32_255.json')['summary']['robust_top1'])}"
        in text
    )
    exact = result("attacks/didicm-glyphs-exact-pgd-linf-8_255.json")["summary"]
    euler = result("attacks/didicm-glyphs-pgd-linf-8_255.json")["summary"]
    assert exact["strategy"] == "cp(steps=8)" and exact["images"] == 424 and exact["gradient_nonzero"] == 1.0
    gap = 100 * (euler["robust_top1"] - exact["robust_top1"])
    assert f"it keeps {percent(exact['robust_top1'])}" in text and f"further {gap:.1f} points" in text


def test_the_didicm_steps_table_is_its_json():
    rows = result("didicm_steps.json")["rows"]
    heads = {"plain twin": "plain", "ours (p0)": "ours", "paper's (free scores)": "paper"}
    quoted = table(ROOT / "docs/results/didicm.md", "| head | sampler | clean | noise 1 |")
    assert len(quoted) == len({(r["head"], r["spec"]) for r in rows})
    for cells in quoted:
        mine = {r["severity"]: r for r in rows if (r["head"], r["spec"]) == (heads[cells[0]], spec_of(cells[1]))}
        assert cells[2:8] == [f"{100 * mine[s]['top1']:.1f}" for s in range(6)], cells[:2]
        assert cells[8] == f"{mine[0]['gmacs_per_image']:.3f}"


def test_the_shipped_didicm_table_is_its_json_and_a_retraining_of_the_steps_tables_model():
    rows = result("didicm_shipped.json")["rows"]
    quoted = table(ROOT / "docs/results/didicm.md", "| shipped model | sampler | clean |")
    assert len(quoted) == len({(r["model"], r["spec"]) for r in rows}) == 5
    top1 = {(r["model"], r["spec"], r["severity"]): r["top1"] for r in rows}
    for cells in quoted:
        mine = [top1[cells[0].strip("`"), spec_of(cells[1]), s] for s in range(6)]
        assert cells[2:8] == [f"{100 * v:.1f}" for v in mine], cells[:2]
    euler = "cp(steps=8;update=euler)"
    before = {
        (r["spec"], r["severity"]): r["top1"] for r in result("didicm_steps.json")["rows"] if r["head"] == "paper"
    }
    said = (
        f"({percent(top1['didicm-glyphs', euler, 0])} clean and {percent(top1['didicm-glyphs', euler, 3])} at noise 3 "
        f"with the Euler step, against the table's {percent(before[euler, 0])} and {percent(before[euler, 3])}"
    )
    assert said in prose("docs/results/didicm.md")


def test_the_student_hdc_table_is_its_json():
    by_mode = {mode: runs(f"all_class_hdc/{mode}.json") for mode in ("leaf-min", "leaf-mean")}
    rows = table(ROOT / "docs/results/all_class.md", "| strategy | NFEs/image | top-1, `leaf-min` |")
    assert len(rows) == len(by_mode["leaf-min"]) == 6
    for cell, nfe, best, mean, top5 in rows:
        run = next(
            r
            for s, r in by_mode["leaf-min"].items()
            if s.replace("rule=top-fraction;K=0.5;", "K=0.5;").replace(";depth=1", "") == spec_of(cell)
        )
        other = by_mode["leaf-mean"][run["strategy"]]
        assert (nfe, best, top5) == (f"{run['nfe_per_image']:.0f}", percent(run["top1"]), percent(run["top5"]))
        assert mean == ("(no tree)" if run["strategy"].startswith("exhaustive") else percent(other["top1"]))


def test_the_glyph_promise_rows_are_their_json():
    rows = {cells[0]: cells for cells in table(ROOT / "docs/results/fast_default.md", "| model | front tuned on |")}
    fast = {(r["model"], r["asked"]): r for r in result("fast_default.json")["rows"] if r["corruption"] == "none"}
    student = result("ece/glyphs-allclass.json")
    student_exhaustive = next(
        r
        for r in result("all_class_heads.json")["rows"]
        if (r["model"], r["strategy"], r["corruption"], r["images"])
        == ("glyphs-allclass", "exhaustive(n=32)", "none", 424)
    )
    checks = {
        "`glyphs`": (fast["glyphs", "(default)"], fast["glyphs", "exhaustive(n=32) (replayed)"]),
        "`glyphs-pruned`": (fast["glyphs-pruned", "(default)"], result("glyphs_pruned_exhaustive32.json")),
        "`glyphs-allclass`": (student, student_exhaustive),
    }
    for name, (default, exhaustive) in checks.items():
        cells = rows[name]
        assert cells[2].endswith(f", {default['nfe_per_image']:.0f} NFEs"), name
        assert cells[3] == percent(default["top1"]) and cells[4].startswith(percent(exhaustive["top1"])), name
        gap = round(round(100 * default["top1"], 2) - round(100 * exhaustive["top1"], 2), 2) + 0.0  # no −0.00
        assert cells[5] == f"{gap:+.2f}".replace("-", "−") and cells[6] == ("kept" if gap >= -0.5 else "broken")


def test_the_fit_parity_table_is_its_json():
    rows = {cells[0]: cells[1] for cells in table(ROOT / "docs/own_data.md", "| model | top-1 on the 424 test glyphs")}
    for name, cell in rows.items():
        run = result(f"fit_parity/{name.split('`')[1].removeprefix('runs/')}.json")
        assert (run["n_images"], run["strategy"], cell) == (424, "exhaustive(n=8)", percent(run["top1"]))
    assert len(rows) == 4
    gap = 100 * (result("fit_parity/glyphs-fit2.json")["top1"] - result("fit_parity/glyphs.json")["top1"])
    assert f"**{gap:.2f} points** (2 images) above" in prose("docs/own_data.md")


@pytest.mark.parametrize(
    "name, header, count",
    [
        ("position_aligned.json", "| model and strategy (calls per image) |", 5),
        ("position_prefilter.json", "| model and prefilter composition (calls per image) |", 5),
        ("position_prior.json", "| student and alignment (calls per image) |", 5),
        ("position_prefilter_prior.json", "| model, aligned with a prior (calls per image) |", 2),
    ],
)
def test_the_aligned_position_tables_are_their_json(name, header, count):
    rows = result(name)["rows"]
    quoted = table(ROOT / "docs/results/glyphs.md", header)
    entries = list(dict.fromkeys((r["model"], r["strategy"]) for r in rows))
    assert len(quoted) == len(entries) == count
    for cells, (model, strategy) in zip(quoted, entries):
        mine = [r for r in rows if (r["model"], r["strategy"]) == (model, strategy)]
        assert cells[0] == f"`{model}` `{strategy}` ({mine[0]['nfe_per_image']:.0f})"
        assert cells[1:] == [percent(r["top1"]) for r in mine] and all(r["images"] == 424 for r in mine)


def test_the_didicm_head_seeds_table_is_its_json():
    def cell(values):
        mean = sum(values) / len(values)
        return f"{100 * mean:.1f}% ({100 * min(values):.1f}–{100 * max(values):.1f})"

    paper = [r for r in result("didicm_steps_seeds.json")["rows"] if r["head"].startswith("paper")]
    ours = [r for r in result("didicm_corruptions_seeds.json")["runs"] if r["data"] == "100%"]
    quoted = table(ROOT / "docs/results/didicm.md", "| head, three training seeds | sampler |")
    assert len(quoted) == 4
    for cells in quoted:
        spec = spec_of(cells[1])
        if cells[0] == "ours (p0)":
            mine = [r for r in ours if r["row"] == f"DiDiCM {spec}"]
        else:
            mine = [r for r in paper if r["spec"] == spec]
        assert len({r["model"] for r in mine}) == 3, cells[:2]
        assert cells[2:8] == [cell([r["top1"] for r in mine if r["severity"] == s]) for s in range(6)], cells[:2]


def test_the_emoji_training_progress_is_its_json():
    files = {
        "3,600 steps, whole range (shipped before)": "step3600",
        "3,600 steps, window [281, 468]": "step3600_window",
        "5,000 steps, window": "step5000",
        "7,200 steps, window": "step7200",
        "9,000 steps, whole range": "step9000_full_range",
        "9,000 steps, window (shipped before)": "step9000",
        "14,000 steps, window (shipped)": "step14000",
    }
    rows = table(ROOT / "docs/results/emoji.md", "| `emoji` weights | held-out noto top-1 | top-5 |")
    assert [cells[0] for cells in rows[:-1]] == list(files)
    for cells in rows[:-1]:
        run = result(f"emoji/held_out_prefilter10_{files[cells[0]]}.json")
        assert run["held_out"] == ["noto"] and run["n_images"] == 227 and run["nfe_per_image"] == 81
        assert run["strategy"] == "prefilter(by=plain-emoji;k=10;then=exhaustive(n=8))"
        assert cells[1:] == [percent(run["top1"]), percent(run["top5"])], cells[0]
    twin = result("emoji/plain_held_out.json")
    assert rows[-1] == ["`plain-emoji` alone", percent(twin["top1"]), percent(twin["top5"])]


def test_the_emoji_window_check_is_its_json():
    files = {
        "[218, 406]": "held_out_window_218-406",
        "[281, 468] (stored)": "held_out_prefilter10_step14000",
        "[343, 531]": "held_out_window_343-531",
        "[406, 593]": "held_out_window_406-593",
    }
    rows = table(ROOT / "docs/results/emoji.md", "| window, 14,000-step weights | held-out noto top-1 |")
    assert [cells[0] for cells in rows] == list(files)
    for cells in rows:
        run = result(f"emoji/{files[cells[0]]}.json")
        window = files[cells[0]].removeprefix("held_out_window_")
        expected = "exhaustive(n=8)" if "step" in window else f"exhaustive(n=8;t={window})"
        assert run["strategy"] == f"prefilter(by=plain-emoji;k=10;then={expected})" and run["n_images"] == 227
        assert run["held_out"] == ["noto"] and cells[1:] == [percent(run["top1"]), percent(run["top5"])]


def test_the_emoji_tree_level_table_is_its_json():
    rows = result("emoji/tree_accuracy.json")["rows"] + result("emoji/tree_accuracy_aug.json")["rows"]
    quoted = table(ROOT / "docs/results/emoji.md", "| all 681 test-style drawings | group (5) |")
    assert len(quoted) == len(rows) == 4
    leaf = {"plain-emoji": "plain.json", "plain-emoji-aug": "plain_aug.json"}
    for cells, run in zip(quoted, rows):
        assert run["images"] == 681 and run["nodes_per_level"] == [5, 40, 227]
        assert cells[1:] == [percent(v) for v in run["top1_per_level"]], cells[0]
        if run["model"] in leaf:  # the leaf level is the flat top-1 the tables above quote
            assert run["top1_per_level"][2] == round(result(f"emoji/{leaf[run['model']]}")["top1"], 4)


def test_the_didicm_scarcity_table_is_its_json():
    rows = result("didicm_scarcity.json")["rows"]
    label = {"100%": "100%", "25% of each class": "25%", "10% of each class": "10%", "8×8 pixels": "8px"}
    quoted = table(ROOT / "docs/results/didicm.md", "| training data | model | sampler | clean |")
    assert len(quoted) == 12
    for cells in quoted:
        mine = label[cells[0]]
        head = ("plain" if mine == "100%" else f"plain ({mine})") if cells[1] == "plain twin" else mine
        found = {r["severity"]: r for r in rows if (r["head"], r["spec"]) == (head, spec_of(cells[2]))}
        assert found[0]["images"] == 424
        assert cells[3:9] == [f"{100 * found[s]['top1']:.1f}" for s in range(6)], cells[:3]
        assert cells[9] == f"{found[0]['gmacs_per_image']:.3f}"
    text = prose("docs/results/didicm.md")
    for mine, twin in (("100%", "plain"), ("25%", "plain (25%)"), ("10%", "plain (10%)"), ("8px", "plain (8px)")):
        top1 = {(r["head"], r["severity"]): r["top1"] for r in rows if r["spec"] in ("cp(steps=8)", "plain")}
        leads = [f"{100 * (top1[mine, s] - top1[twin, s]):+.1f}".replace("-", "−") for s in range(6)]
        assert ", ".join(leads) in text, mine


def test_the_didicm_scarcity_seeds_table_is_its_json():
    """The lead over the own twin, mean of three seeds (per seed), at 100% and at 10% of each class."""
    plain = {
        (r["model"], r["severity"]): r["top1"]
        for r in result("didicm_corruptions_seeds.json")["runs"]
        if (r["row"], r["data"]) == ("plain", "100%")
    }
    paper = {
        (r["head"], r["severity"]): r["top1"]
        for r in result("didicm_steps_seeds.json")["rows"]
        if r["spec"] == "cp(steps=8)"
    }
    twin_of = {
        "paper": "plain-glyphs",
        "paper-seed1": "runs/plain-glyphs-seed1",
        "paper-seed2": "runs/plain-glyphs-seed2",
    }
    tenth = {(r["head"], r["spec"], r["severity"]): r["top1"] for r in result("didicm_scarcity_seeds.json")["rows"]}
    assert {r["images"] for r in result("didicm_scarcity_seeds.json")["rows"]} == {424}
    quarter = {
        (r["head"], r["spec"], r["severity"]): r["top1"] for r in result("didicm_scarcity_seeds_25.json")["rows"]
    }
    first = {(r["head"], r["spec"], r["severity"]): r["top1"] for r in result("didicm_scarcity.json")["rows"]}
    quarter.update({("25% seed 0", "cp(steps=8)", v): first["25%", "cp(steps=8)", v] for v in range(6)})
    quarter.update({("plain (25% seed 0)", "plain", v): first["plain (25%)", "plain", v] for v in range(6)})
    leads = {
        "100%": [[paper[h, s] - plain[t, s] for h, t in twin_of.items()] for s in range(6)],
        "25% of each class": [
            [
                quarter[f"25% seed {i}", "cp(steps=8)", s] - quarter[f"plain (25% seed {i})", "plain", s]
                for i in range(3)
            ]
            for s in range(6)
        ],
        "10% of each class": [
            [tenth[f"10% seed {i}", "cp(steps=8)", s] - tenth[f"plain (10% seed {i})", "plain", s] for i in range(3)]
            for s in range(6)
        ],
    }
    signed = lambda x: f"{100 * x:+.1f}".replace("-", "−")  # noqa: E731
    quoted = table(ROOT / "docs/results/didicm.md", "| training data, three seeds | clean | noise 1 |")
    assert [cells[0] for cells in quoted] == list(leads)
    for cells in quoted:
        expected = [f"{signed(sum(g) / 3)} ({', '.join(signed(x) for x in g)})" for g in leads[cells[0]]]
        assert cells[1:] == expected, cells[0]
    # the seed-0 pair of this run is the 10% pair of the single-seed table
    single = {(r["head"], r["spec"], r["severity"]): r["top1"] for r in result("didicm_scarcity.json")["rows"]}
    assert all(tenth["10% seed 0", "cp(steps=8)", s] == single["10%", "cp(steps=8)", s] for s in range(6))


def test_the_emoji_didicm_table_is_its_json():
    rows = {(r["head"], r["spec"], r["severity"]): r for r in result("emoji/didicm_steps.json")["rows"]}
    quoted = table(ROOT / "docs/results/didicm.md", "| emoji, 681 test drawings | sampler | clean |")
    assert len(quoted) == 9
    for cells in quoted:
        head = "plain" if cells[0] == "plain twin" else cells[0]
        found = [rows[head, spec_of(cells[1]), s] for s in range(6)]
        assert [r["images"] for r in found] == [681] * 6
        assert cells[2:8] == [f"{100 * r['top1']:.1f}" for r in found], cells[1]
        assert cells[8] == f"{found[0]['gmacs_per_image']:.3f}"
    held, twin = result("emoji/didicm_held_out.json"), result("emoji/plain_held_out.json")
    assert held["held_out"] == ["noto"] and held["strategy"] == "cp(steps=8)"
    assert f"{100 * held['top1']:.2f}% against {100 * twin['top1']:.2f}%" in prose("docs/results/didicm.md")


def test_the_didicm_paper_recipe_table_is_its_json():
    rows = result("didicm_paper_recipe.json")["rows"]
    heads = {
        "plain twin": "plain",
        "plain twin, `--cutmix 1`": "plain (sampled, cutmix 1)",
        "paper's head, balanced transitions (ours)": "balanced",
        "paper's head, sampled transitions (the paper's SEDD loss)": "sampled",
        "paper's head, sampled, `--mixup 0.2` (DiDiCMLoss)": "sampled, mixup 0.2",
        "paper's head, sampled, `--cutmix 1` (DiDiCMLoss)": "sampled, cutmix 1",
        "paper's head, balanced, `--schedule geometric`": "balanced, geometric",
    }
    quoted = table(ROOT / "docs/results/didicm.md", "| training | sampler | clean | noise 1 |")
    assert len(quoted) == 8
    for cells in quoted:
        found = {r["severity"]: r for r in rows if (r["head"], r["spec"]) == (heads[cells[0]], spec_of(cells[1]))}
        assert found[0]["images"] == 424
        assert cells[2:8] == [f"{100 * found[s]['top1']:.1f}" for s in range(6)], cells[:2]


def test_the_teachers_32_image_attack_table_is_read_from_every_models_rows():
    quoted = table(ROOT / "docs/results/robustness.md", "| on the teacher's 32 images |")
    ids = [r["id"] for r in result("attacks/glyphs-pgd-linf-8_255.json")["rows"]]
    assert len(ids) == 32 and len(quoted) == 6
    for cells in quoted:
        name = cells[0].split("`")[1]
        rows = [{r["id"]: r for r in result(f"attacks/{name}-{c}.json")["rows"]} for c in ATTACK_COLUMNS]
        if cells[0].count("`") == 4:
            assert cells[0].split("`")[3] == result(f"attacks/{name}-pgd-linf-8_255.json")["summary"]["strategy"]
        clean = sum(rows[0][i]["clean"] == rows[0][i]["label"] for i in ids) / 32
        robust = [sum(r[i]["attacked"] == r[i]["label"] for i in ids) / 32 for r in rows]
        assert cells[1:] == [percent(v) for v in (clean, *robust)], name


def test_the_readme_robustness_summary_is_its_json():
    text = prose("README.md")
    names = ("didicm-glyphs", "plain-glyphs", "plain-glyphs-randaug")
    suite = {name: 100 * result(f"robustness/{name}.json")["mean_corruption_top1"] for name in names}
    pgd = {
        name: 100 * result(f"attacks/{name}-pgd-linf-8_255.json")["summary"]["robust_top1"]
        for name in ("didicm-glyphs", "plain-glyphs", "plain-glyphs-aug")
    }
    assert (
        f"DiDiCM {suite['didicm-glyphs']:.1f}% mean corruption top-1 against the plain twin's "
        f"{suite['plain-glyphs']:.1f}%" in text
    )
    assert f"RandAugment at {suite['plain-glyphs-randaug']:.1f}%" in text
    assert (
        f"DiDiCM keeps {pgd['didicm-glyphs']:.1f}% at ℓ∞ 8/255, the plain twin {pgd['plain-glyphs']:.1f}%, "
        f"the noise-trained twin {pgd['plain-glyphs-aug']:.1f}%" in text
    )
    default, aug = result("robustness/emoji-227.json"), result("robustness/plain-emoji-aug-227.json")
    said = [100 * r["mean_corruption_top1"] for r in (default, default["baseline"], aug)]
    assert (
        f"the tuned default keeps {said[0]:.1f}% under corruption against its twin's {said[1]:.1f}% and the "
        f"augmented twin's {said[2]:.1f}%, on the first 227 drawings" in text
    )


STYLES = ("openmoji", "fluent-hc", "emojione-mono")


def family_cells(run: dict, groups: tuple[str, ...]) -> list[str]:
    """A family row as the docs quote it: top-1 per group (if several), top-1, top-5, per tree level, cost."""
    return [
        *(percent(run["per_group"][g]) for g in groups),
        percent(run["top1"]),
        percent(run["top5"]),
        *(percent(v) for v in run["top1_per_level"]),
        f"{run['nfe_per_image']:,.0f}",
        f"{run['gmacs_per_image']:.1f}",
    ]


@pytest.mark.parametrize(
    ("name", "header", "groups", "images"),
    [
        ("emoji/family.json", "| strategy, 681 test drawings |", STYLES, 681),
        ("emoji/family_held_out.json", "| strategy, 227 held-out noto drawings |", (), 227),
    ],
)
def test_the_emoji_family_tables_are_their_json(name, header, groups, images):
    found = result(name)
    assert found["images"] == images and found["slots"] == 4 and found["model"] == "emoji"
    rows = {r["spec"]: r for r in found["rows"]}
    quoted = table(ROOT / "docs/results/emoji.md", header)
    assert len(quoted) >= 8
    for cells in quoted:
        run = rows[spec_of(cells[0])]
        assert cells[1:] == family_cells(run, groups), cells[0]


def test_the_emoji_hdc_claim_is_its_json():
    claim = result("emoji/family.json")["claim"]
    quoted = table(ROOT / "docs/results/emoji.md", "| descent, the seed paper's form |")
    rules = {r["spec"]: r for r in claim["rules"]}
    assert len(quoted) >= 4
    for cells in quoted:
        rule = rules[spec_of(cells[0])]
        assert cells[1:] == [
            percent(rule["top1"]),
            f"{100 * rule['gap']:+.2f} ± {100 * rule['gap_standard_error']:.2f}",
            f"{rule['nfe_per_image']:,.0f}",
            f"{rule['less_than_final']:.2f}×",
            f"{rule['less_than_adaptive']:.2f}×",
            "yes" if rule["reaches"] else "no",
        ], cells[0]
    adaptive = claim["adaptive"]
    said = f"`{adaptive['spec']}`, {percent(adaptive['top1'])} at {adaptive['nfe_per_image']:,.0f} NFEs"
    assert said in prose("docs/results/emoji.md")


def test_the_emoji_tree_check_is_its_json():
    ancestor = [dict(r, mode="ancestor") for r in result("emoji/family.json")["levels"]]
    mean = [
        dict(
            level=r["level"],
            nodes=r["nodes"],
            slots=1,
            ranks_first=r["first"],
            mode="mean",
            survives={"top-fraction": r["top_fraction"], "within-std": r["within_std"]},
        )
        for r in result("emoji/tree_levels_mean.json")["rows"]
    ]
    quoted = table(ROOT / "docs/results/emoji.md", "| level | nodes | slots | node conditioning |")
    assert len(quoted) == len(ancestor) + len(mean)
    for cells, r in zip(quoted, ancestor + mean):
        assert cells == [
            str(r["level"]),
            str(r["nodes"]),
            str(r["slots"]),
            r["mode"],
            percent(r["ranks_first"]),
            percent(r["survives"]["top-fraction"]),
            percent(r["survives"]["within-std"]),
        ]


def test_the_emoji_promise_row_is_the_family_json():
    rows = {r["spec"]: r for r in result("emoji/family.json")["rows"]}
    default, exhaustive = rows["auto"], rows["exhaustive(n=4)"]
    assert default["strategy"] == "prefilter(by=plain-emoji;k=5;then=exhaustive(n=4))"
    quoted = table(ROOT / "docs/results/fast_default.md", "| model | front tuned on | default (test split)")
    emoji = next(cells for cells in quoted if cells[0] == "`emoji`")
    difference = default["top1"] - exhaustive["top1"]
    assert emoji[2:] == [
        f"`prefilter(…;k=5;then=exhaustive(n=4))`, {default['nfe_per_image']:.0f} NFEs",
        percent(default["top1"]),
        f"{percent(exhaustive['top1'])} (`n=4`)",
        f"{100 * difference:+.2f}".replace("-", "−"),
        "kept" if difference >= -0.005 - 1e-9 else "broken",
    ]
    twin = next(r for r in result("emoji/family.json")["rows"] if r["spec"] == "plain-emoji")
    said = f"twin `plain-emoji` on unseen styles, {100 * default['top1']:.1f}% against {100 * twin['top1']:.1f}%"
    assert said in prose("README.md")


@pytest.mark.parametrize(
    "page, name, dataset",
    [
        ("docs/results/glyphs.md", "position_shipped_glyphs.json", "glyphs"),
        ("docs/results/emoji.md", "position_shipped_emoji.json", "emoji"),
    ],
)
def test_every_shipped_models_position_table_is_its_json(page, name, dataset):
    from diffclass.hub import embedded_models

    saved = result(name)
    rows, header = saved["rows"], f"| {dataset} model and strategy (calls per image), up to four pixels off |"
    quoted = table(ROOT / page, header)
    entries = list(dict.fromkeys((r["model"], r["strategy"]) for r in rows))
    assert saved["dataset"] == dataset and saved["limit"] is None and len(quoted) == len(entries)
    assert {m for m in embedded_models() if dataset in m} <= {model for model, _ in entries}
    centred = {}  # points lost centred, per entry
    for cells, (model, strategy) in zip(quoted, entries):
        mine = [r for r in rows if (r["model"], r["strategy"]) == (model, strategy)]
        assert [r["placement"] for r in mine] == ["as drawn", "centre", "shift:1", "shift:2", "shift:3", "shift:4"]
        assert {r["images"] for r in mine} == {424 if dataset == "glyphs" else 681}
        assert cells[0] == f"`{model}` `{strategy}` ({mine[0]['nfe_per_image']:,.0f})"
        assert cells[1:] == [percent(r["top1"]) for r in mine], model
        centred[model, strategy] = 100 * (mine[0]["top1"] - mine[1]["top1"])
    if dataset == "glyphs":  # only the two trained with shifts keep their place centred
        close = {model: f"{gap:.2f}" for (model, _), gap in centred.items() if gap < 2}
        assert close == {"plain-glyphs-shift": "0.95", "runs/didicm-glyphs-scores-shift": "0.24"}
        assert "(0.95 and 0.24 points)" in prose(page)
    else:  # the diffusion default's losses as the page states them
        default = next(e for e in entries if e[0] == "emoji")
        mine = [r["top1"] for r in rows if (r["model"], r["strategy"]) == default]
        said = [f"{100 * (mine[0] - mine[k]):.2f}" for k in (3, 4, 5)]
        assert f"it loses {said[0]} points two pixels off, {said[1]} three pixels off and {said[2]} four" in prose(page)


def test_the_autoattack_table_reads_every_attack_on_the_same_images():
    quoted = table(ROOT / "docs/results/robustness.md", "| AutoAttack-rand, ℓ∞ 8/255 | what is attacked |")
    assert len(quoted) == 5
    for cells in quoted:
        name = cells[0].strip("`")
        auto = result(f"attacks/{name}-autoattack-8_255.json")
        summary, ids = auto["summary"], [r["id"] for r in auto["rows"]]
        assert (summary["attack"], summary["eot"], summary["gradient_nonzero"]) == ("autoattack", 0, 1.0)
        assert cells[1].startswith(f"`{summary['strategy']}`") and cells[2] == str(len(ids))
        others = [{r["id"]: r for r in result(f"attacks/{name}-{c}.json")["rows"]} for c in ATTACK_COLUMNS[2::2]]
        robust = [sum(rows[i]["attacked"] == rows[i]["label"] for i in ids) / len(ids) for rows in others]
        assert cells[3:] == [percent(summary["clean_top1"]), *map(percent, robust), percent(summary["robust_top1"])]


def test_the_emoji_defaults_100_image_attack_table_is_read_from_every_models_rows():
    quoted = table(ROOT / "docs/results/robustness.md", "| on the emoji default's 100 drawings |")
    ids = [r["id"] for r in result("attacks/emoji-pgd-linf-8_255.json")["rows"]]
    assert len(ids) == 100 and len(quoted) == 4
    for cells in quoted:
        name = cells[0].split("`")[1].removeprefix("runs/")
        rows = [{r["id"]: r for r in result(f"attacks/{name}-{c}.json")["rows"]} for c in ATTACK_COLUMNS]
        clean = sum(rows[0][i]["clean"] == rows[0][i]["label"] for i in ids) / 100
        robust = [sum(r[i]["attacked"] == r[i]["label"] for i in ids) / 100 for r in rows]
        assert cells[1:] == [percent(v) for v in (clean, *robust)], name


def test_the_emoji_defaults_full_suite_tables_are_their_json():
    page = ROOT / "docs/results/robustness.md"
    default = result("robustness/emoji-227.json")
    found = {
        "plain-emoji": default["baseline"],
        "plain-emoji-aug": result("robustness/plain-emoji-aug-227.json"),
        "emoji": default,
    }
    assert {(r["images"], r["dataset"]) for r in found.values()} == {(227, "emoji")}
    assert len({len(r["rows"]) for r in found.values()}) == 1 and len(default["rows"]) == 75
    quoted = table(page, "| emoji model (the first 227 test drawings) |")
    assert len(quoted) == 3
    for cells in quoted:
        run = found[cells[0].split("`")[1]]
        assert cells[1].startswith(f"`{run['strategy']}`") and cells[2:] == robustness_cells(run)
    quoted = table(page, "| corruption (the first 227 emoji) |")
    assert len(quoted) == 15
    for cells in quoted:
        for cell, run in zip(cells[1:], found.values()):
            top1 = [r["top1"] for r in run["rows"] if r["corruption"] == cells[0]]
            assert len(top1) == 5 and cell == f"{100 * sum(top1) / 5:.1f}", cells[0]


def test_the_registered_position_tables_and_their_reading_are_their_json():
    page = ROOT / "docs/results/glyphs.md"
    shipped, registered = result("position_shipped_glyphs.json")["rows"], result("position_registered.json")["rows"]
    teacher = result("position_registered_teacher.json")["rows"]
    rows = registered + [r for r in shipped if r["model"] == "glyphs"] + teacher
    entries = list(dict.fromkeys((r["model"], r["strategy"]) for r in rows))
    quoted = table(page, "| glyphs model and strategy (calls per image), registered |")
    assert len(quoted) == len(entries) == 9
    top1 = {}
    for cells, (model, strategy) in zip(quoted, entries):
        mine = [r for r in rows if (r["model"], r["strategy"]) == (model, strategy)]
        assert [r["placement"] for r in mine] == ["as drawn", "centre", "shift:1", "shift:2", "shift:3", "shift:4"]
        assert {r["images"] for r in mine} == {424}
        assert cells[0] == f"`{model}` `{strategy}` ({mine[0]['nfe_per_image']:,.0f})"
        assert cells[1:] == [percent(r["top1"]) for r in mine], model
        top1[model, strategy] = [100 * r["top1"] for r in mine]
    defaults = [e for e in entries if "registered" not in e[1]]
    for model, strategy in defaults:  # the unregistered rows repeat the table of shipped models exactly
        assert top1[model, strategy] == [
            100 * r["top1"] for r in shipped if (r["model"], r["strategy"]) == (model, strategy)
        ]
    pairs = {  # each default and its registered twin at the default prior, behind the same sieve
        model: (top1[model, strategy], next(v for (m, s), v in top1.items() if m == model and "prior=0.05" in s))
        for model, strategy in defaults
    }
    gaps = sorted(after[0] - after[1] for _, after in pairs.values())
    text = prose("docs/results/glyphs.md")
    assert f"within {gaps[0]:.1f}–{gaps[-1]:.1f} points centred" in text
    before = sorted(b[0] - b[1] for b, _ in pairs.values())
    assert f"(from {before[0]:.1f}–{before[-1]:.1f} unregistered)" in text
    for model in ("glyphs-pruned", "glyphs"):
        b, a = pairs[model]
        fewer = round((b[0] - a[0]) * 424 / 100)  # glyphs
        assert (
            f"{a[1]:.2f}% centred against {b[1]:.2f}% at {100 * fewer / 424:.2f} points as drawn ({fewer} glyphs)"
            in text
        )
    no_prior = next(v for (m, s), v in top1.items() if s.startswith("registered(prior=0;"))
    assert f"flat to within {no_prior[0] - no_prior[1]:.2f} points" in text
    noise = [result(f"registered_noise3_allclass{tail}.json")["top1"] for tail in ("", "_registered")]
    assert f"keeps {percent(noise[1])} against {percent(noise[0])} unregistered" in text
    after_table = table(page, "| model | before: as drawn, centred (points lost) |")
    assert {cells[0].strip("`") for cells in after_table} == {m for m in embedded_models_of("glyphs")}
    for cells in after_table:
        for cell in (cells[1], cells[3]):
            drawn, centred, lost = re.fullmatch(r"([\d.]+)%, ([\d.]+)% \(([\d.]+)\)", cell).groups()
            assert f"{float(drawn) - float(centred):.2f}" == lost
    default = [r for r in registered if (r["model"], r["strategy"]) == entries[0]]  # the student's default
    reg = [r for r in result("position_registered_slack.json")["rows"] if r["model"] == "glyphs-allclass"]
    assert (
        f"costs {100 * (default[0]['top1'] - reg[0]['top1']):.1f} points as drawn and turns "
        f"{100 * default[1]['top1']:.0f}% centred and {100 * default[3]['top1']:.0f}% two pixels off into "
        f"{100 * reg[1]['top1']:.0f}% and {100 * reg[3]['top1']:.0f}%, at "
        f"{reg[0]['nfe_per_image'] / default[0]['nfe_per_image']:.1f}× the calls" in prose("README.md")
    )
    from diffclass.hub import ModelInfo, resolve_model_folder

    anchors = ModelInfo.load(resolve_model_folder("glyphs")).anchors
    for name in ("glyphs-allclass", "glyphs-pruned"):  # the same training glyphs, the same anchors
        assert ModelInfo.load(resolve_model_folder(name)).anchors == anchors
    ys, xs = [a[0] for a in anchors], [a[1] for a in anchors]
    assert f"y {min(ys):.1f}–{max(ys):.1f} and x {min(xs):.1f}–{max(xs):.1f} pixels" in text
    slack = result("position_registered_slack.json")["rows"]
    for cells in after_table[-3:]:  # the diffusion models, registered with slack
        drawn, centred = [r["top1"] for r in slack if f"`{r['model']}`" == cells[0]][:2]
        assert "slack=1" in cells[2]
        assert cells[3] == f"{percent(drawn)}, {percent(centred)} ({100 * (drawn - centred):.2f})"


def embedded_models_of(dataset: str) -> list[str]:
    from diffclass.hub import embedded_models

    return [m for m in embedded_models() if dataset in m]


def test_the_unseen_typeface_position_table_is_its_json():
    names = ("position_unseen_registered.json", "position_unseen_registered_pruned.json")
    runs = [result(name) for name in (*names, "position_unseen_registered_teacher.json")]
    slack = result("position_unseen_registered_slack.json")
    assert all(r["dataset"] == "folder:runs/unseen-glyphs" and r["limit"] is None for r in (*runs, slack))
    rows = [row for run in runs for row in run["rows"]]
    slack_rows = [r for r in slack["rows"] if r["model"] != "glyphs"]  # the teacher's: as drawn and centred only
    quoted = table(ROOT / "docs/results/glyphs.md", "| unseen typefaces: model and strategy (calls per image) |")
    assert len(quoted) == 11
    assert_position_rows(quoted, rows + slack_rows, ["as drawn", "centre", "shift:1", "shift:2"], 848)
    gaps = {}  # per diffusion model: centred gap before and after, and two pixels off before and after
    for model in ("glyphs-allclass", "glyphs-pruned", "glyphs"):
        before, after = (
            [100 * r["top1"] for r in rows if r["model"] == model and (("registered" in r["strategy"]) == reg)]
            for reg in (False, True)
        )
        gaps[model] = (before[0] - before[1], after[0] - after[1], before[3], after[3])
    text = prose("docs/results/glyphs.md")
    after = sorted(g[1] for g in gaps.values())
    before = sorted(g[0] for g in gaps.values())
    assert f"models lose {after[0]:.1f}–{after[-1]:.1f} points instead of {before[0]:.1f}–{before[-1]:.1f}" in text


def assert_position_rows(quoted: list[list[str]], rows: list[dict], placements: list[str], images: int) -> None:
    """Each quoted row is one (model, strategy) of `rows`, in their order: its calls as drawn and its top-1s."""
    entries = list(dict.fromkeys((r["model"], r["strategy"]) for r in rows))
    assert len(quoted) == len(entries)
    for cells, (model, strategy) in zip(quoted, entries):
        mine = [r for r in rows if (r["model"], r["strategy"]) == (model, strategy)]
        assert [r["placement"] for r in mine] == placements and {r["images"] for r in mine} == {images}
        assert cells[0] == f"`{model}` `{strategy}` ({mine[0]['nfe_per_image']:,.0f})"
        assert cells[1:] == [percent(r["top1"]) for r in mine], model


def test_the_slack_position_table_and_its_reading_are_their_json():
    rows = result("position_registered_slack.json")["rows"]
    whole = [r for r in rows if r["model"] != "glyphs"]  # the teacher's rows: as drawn and centred only
    placements = ["as drawn", "centre", *(f"shift:{s}" for s in range(1, 5))]
    quoted = table(ROOT / "docs/results/glyphs.md", "| glyphs model, registered with slack (calls per image) |")
    assert_position_rows(quoted, whole, placements, 424)
    assert [r["placement"] for r in rows if r["model"] == "glyphs"] == ["as drawn", "centre"]
    assert all("slack=1;" in r["strategy"] for r in rows)


@pytest.mark.parametrize(
    ("header", "names"),
    [
        (
            "| test split, centred: model and strategy",
            ("position_centred_losses.json", "position_registered_slack.json"),
        ),
        (
            "| unseen typefaces, centred: model and strategy",
            ("position_centred_losses_unseen.json", "position_unseen_registered_slack.json"),
        ),
    ],
)
def test_what_centring_takes_away_is_its_json(header, names):
    rows = [row for name in names for row in result(name)["rows"] if row["placement"] in ("as drawn", "centre")]
    entries = list(dict.fromkeys((r["model"], r["strategy"]) for r in rows))
    quoted = table(ROOT / "docs/results/glyphs.md", header)
    assert len(quoted) == len(entries) >= 11
    for cells, (model, strategy) in zip(quoted, entries):
        drawn, centred = (r for r in rows if (r["model"], r["strategy"]) == (model, strategy))
        assert cells == [
            f"`{model}` `{strategy}` ({drawn['nfe_per_image']:,.0f})",
            percent(drawn["top1"]),
            percent(centred["top1"]),
            *(str(centred[key]) for key in ("lost", "lost_to_another_height", "gained")),
        ]
        # the counts are the change: what was lost less what was gained, over the images
        assert centred["lost"] - centred["gained"] == round((drawn["top1"] - centred["top1"]) * drawn["images"])


def test_the_slack_reading_against_the_target_is_its_json():
    text = prose("docs/results/glyphs.md")
    defaults = {
        r["model"]: r
        for r in result("position_centred_losses.json")["rows"]
        if "registered" not in r["strategy"] and r["placement"] == "as drawn"
    }
    slack = result("position_registered_slack.json")["rows"]
    drawn = {r["model"]: 100 * r["top1"] for r in slack if r["placement"] == "as drawn"}
    centred = {r["model"]: r for r in slack if r["placement"] == "centre"}
    under = {m: 100 * defaults[m]["top1"] - drawn[m] for m in drawn}  # as drawn, under the default's
    gap = {m: drawn[m] - 100 * centred[m]["top1"] for m in drawn}  # centred, under its own as drawn
    assert f"(0.48 points under today's as drawn, {gap['glyphs-allclass']:.2f} centred)" in text
    assert under["glyphs-allclass"] == pytest.approx(0.48, abs=0.005)
    assert (
        f"the teacher comes within {gap['glyphs']:.2f} centred but at {under['glyphs']:.2f} points as drawn, and "
        f"`glyphs-pruned` within {gap['glyphs-pruned']:.2f} centred at {under['glyphs-pruned']:.2f} as drawn" in text
    )
    student, pruned, teacher = (centred[m] for m in ("glyphs-allclass", "glyphs-pruned", "glyphs"))
    assert (
        f"the student loses {student['lost']} ({student['lost_to_another_height']} to another height), `glyphs-pruned` "
        f"{pruned['lost']} ({pruned['lost_to_another_height']}) and the teacher {teacher['lost']} "
        f"({teacher['lost_to_another_height']})" in text
    )
    unseen = result("position_unseen_registered_slack.json")["rows"]
    plain = {
        r["model"]: r
        for r in result("position_unseen_registered.json")["rows"]
        + result("position_unseen_registered_pruned.json")["rows"]
        if r["placement"] == "as drawn" and "registered" not in r["strategy"]
    }
    u = {m: [100 * r["top1"] for r in unseen if r["model"] == m] for m in ("glyphs-allclass", "glyphs-pruned")}
    a, p = u["glyphs-allclass"], u["glyphs-pruned"]
    base = {m: 100 * r["top1"] for m, r in plain.items()}
    assert (
        f"keep {a[1]:.2f}% and {p[1]:.2f}% centred, {a[0] - a[1]:.2f} and {p[0] - p[1]:.2f} points under their own "
        f"as drawn, and score {a[0]:.2f}% and {p[0]:.2f}% as drawn, {a[0] - base['glyphs-allclass']:.2f} "
        f"and {p[0] - base['glyphs-pruned']:.2f} points above their defaults" in text
    )
    t = [100 * r["top1"] for r in unseen if r["model"] == "glyphs"]
    teacher_default = next(
        100 * r["top1"]
        for r in result("position_unseen_registered_teacher.json")["rows"]
        if r["placement"] == "as drawn" and "registered" not in r["strategy"]
    )
    assert (
        f"keeps {t[1]:.2f}% centred, {t[0] - t[1]:.2f} points under its own {t[0]:.2f}% as drawn and "
        f"{teacher_default - t[0]:.2f} under its default's" in text
    )
    assert f"the teacher comes within {t[0] - t[1]:.2f} centred at {teacher_default - t[0]:.2f} as drawn" in text
    noise = result("registered_noise3_allclass_slack.json")
    assert "slack=1" in noise["strategy"] and f"with slack keeps {percent(noise['top1'])}" in text
