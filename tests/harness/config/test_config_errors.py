"""Bad input gets one message naming file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.config import load_inventory, load_suite
from harness.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip())
    return p


def error_of(loader, path: Path) -> ConfigError:  # noqa: ANN001
    with pytest.raises(ConfigError) as e:
        loader(path)
    return e.value


GOOD_SUITE = """
name: s
models:
  - builtin: digits-cnn
variants: [fp32, "int8-dynamic"]
runtimes: [onnxruntime]
"""


def test_good_suite_parses_with_defaults(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD_SUITE))
    assert suite.models[0].label == "digits-cnn"
    assert suite.variants == ("fp32", "int8-dynamic")
    assert suite.measure.min_iters == 200 and suite.measure.min_s == 3.0 and suite.measure.threads == "auto"


def test_chain_is_normalised(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD_SUITE.replace('"int8-dynamic"', '"fp32>int8-dynamic"')))
    assert suite.variants[1] == "fp32 > int8-dynamic"


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (GOOD_SUITE + "colour: red\n", 6, "colour", "unknown key 'colour'"),
        (GOOD_SUITE.replace("- builtin: digits-cnn", "- builtin: nope"), 3, "models.0.builtin", "unknown built-in"),
        (GOOD_SUITE.replace("[onnxruntime]", "[onnxruntime, tflight]"), 5, "runtimes", "unknown runtime 'tflight'"),
        (GOOD_SUITE.replace('"int8-dynamic"', '"fp32 > frob"'), 4, "variants.1", "unknown recipe 'frob'"),
        (GOOD_SUITE + "measure: {min_iters: lots}\n", 6, "measure.min_iters", "integer"),
        (GOOD_SUITE + "measure: {threads: 0}\n", 6, "measure.threads", ">= 1"),
        (GOOD_SUITE.replace("- builtin: digits-cnn", "- {name: x, input_shape: [1]}"), 3, "models.0", "one of 'builtin'"),
        (GOOD_SUITE.replace("name: s\n", ""), None, "name", "required"),
    ],
)
def test_suite_errors_point_at_line_and_field(tmp_path: Path, text: str, line: int | None, field: str, words: str) -> None:
    path = write(tmp_path, text)
    e = error_of(load_suite, path)
    assert e.field == field
    assert words in str(e)
    assert e.location == (f"{path}:{line}" if line else f"{path}:1")


def test_onnx_model_paths_are_relative_to_the_suite(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    suite = load_suite(write(tmp_path, """
        name: s
        models:
          - {name: mine, onnx: m.onnx, input_shape: [1, 3, 8, 8]}
        """))
    assert suite.models[0].onnx == tmp_path / "m.onnx"
    missing = write(tmp_path, "name: s\nmodels:\n  - {name: mine, onnx: gone.onnx, input_shape: [1]}\n", "g.yaml")
    e = error_of(load_suite, missing)
    assert "file not found" in str(e) and e.field == "models.0.onnx" and e.location.endswith("g.yaml:3")


def test_yaml_syntax_error_and_duplicate_key_have_lines(tmp_path: Path) -> None:
    e = error_of(load_suite, write(tmp_path, "name: s\nmodels: [\n"))
    assert e.location.startswith(str(tmp_path / "f.yaml"))
    e = error_of(load_suite, write(tmp_path, "name: s\nname: t\nmodels: []\n", "d.yaml"))
    assert "duplicate" in str(e).lower() and e.location.endswith("d.yaml:2")


def test_missing_file(tmp_path: Path) -> None:
    e = error_of(load_suite, tmp_path / "nope.yaml")
    assert "file not found" in str(e)


INVENTORY = """
defaults:
  user: edge
  port: 2222
devices:
  - name: local
    kind: local
    runtimes: [onnxruntime, openvino]
  - name: box
    kind: x86
    host: 10.0.0.40
    port: 22
    runtimes: [openvino]
    tags: [x86]
"""


def test_inventory_defaults_fill_unset_fields(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, INVENTORY))
    local, box = inv.resolved()
    assert box.user == "edge" and box.port == 22 and box.host_key_policy == "strict"
    assert local.port == 2222 and local.python is None  # local runs the coordinator's own Python
    assert box.python == "python3"


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("kind: x86", "kind: x68", 9, "devices.1.kind", "'jetson'"),
        ("name: box", "name: local", 8, "devices.1.name", "duplicate device name 'local'"),
        ("runtimes: [openvino]", "runtimes: [openvino, tensorRT]", 12, "devices.1.runtimes", "unknown runtime"),
        ("    host: 10.0.0.40\n", "", 8, "devices.1", "needs a 'host'"),
        ("    port: 22\n", "    port: many\n", 11, "devices.1.port", "integer"),
        ("tags: [x86]", "tags: [x86]\n    colour: red", 14, "devices.1.colour", "unknown key"),
        ("tags: [x86]", "tags: [x86]\n    pool: local", 14, "devices.1.pool", "pool 'local' has the name of a device"),
    ],
)
def test_inventory_errors(tmp_path: Path, old: str, new: str, line: int, field: str, words: str) -> None:
    path = write(tmp_path, INVENTORY.replace(old, new))
    e = error_of(load_inventory, path)
    assert e.field == field and words in str(e)
    assert e.location == f"{path}:{line}"


def test_shipped_files_are_valid() -> None:
    root = Path(__file__).resolve().parents[3]
    inv = load_inventory(root / "inventory.yaml")
    assert [d.name for d in inv.devices] == ["local"]
    for suite in (root / "suites").glob("*.yaml"):
        load_suite(suite)


def test_suite_defined_recipes(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, """
        name: s
        models: [{builtin: digits-cnn}]
        recipes:
          int8-pc: {kind: int8-dynamic, per_channel: true}
        variants: [fp32, "fp32 > int8-pc"]
        """))
    assert suite.variants == ("fp32", "fp32 > int8-pc")
    assert suite.recipes == {"int8-pc": {"kind": "int8-dynamic", "per_channel": True}}


@pytest.mark.parametrize(
    ("recipes", "words"),
    [
        ("int8-pc: {kind: int8-dynamic, colour: 1}", "option 'colour'"),
        ("int8-pc: {kind: int9}", "unknown kind 'int9'"),
        ("int8-pc: {per_channel: true}", "needs 'kind'"),
        ("fp32: {kind: int8-dynamic}", "is built in"),
        ("int8-pc: {kind: int8-dynamic, per_channel: maybe}", "per_channel"),
    ],
)
def test_bad_recipe_definitions(tmp_path: Path, recipes: str, words: str) -> None:
    path = write(tmp_path, f"name: s\nmodels: [{{builtin: digits-cnn}}]\nrecipes:\n  {recipes}\n")
    e = error_of(load_suite, path)
    assert words in str(e) and e.location == f"{path}:4" and e.field.startswith("recipes")


def test_measure_target_and_quiet(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD_SUITE))
    assert suite.measure.target is None  # stop on min_iters and min_s alone
    q = suite.measure.quiet  # read the board before each window by default
    assert (q.max_other_cpu_pct, q.max_load_per_cpu, q.min_free_mb, q.wait_s) == (25, 1.0, 100, 30)
    text = GOOD_SUITE + "measure: {target: {percentile: 90, rel_error: 0.05}, quiet: null}\n"
    suite = load_suite(write(tmp_path, text))
    assert suite.measure.quiet is None
    t = suite.measure.target
    assert (t.percentile, t.rel_error, t.confidence) == (90, 0.05, 0.95)


@pytest.mark.parametrize(
    ("measure", "field", "words"),
    [
        ("{target: {percentile: 100}}", "measure.target.percentile", "less than 100"),
        ("{target: {rel_error: 0}}", "measure.target.rel_error", "greater than 0"),
        ("{target: {confidence: 1}}", "measure.target.confidence", "less than 1"),
        ("{target: {pct: 99}}", "measure.target.pct", "unknown key"),
        ("{quiet: {wait_s: -1}}", "measure.quiet.wait_s", "greater than or equal to 0"),
        ("{quiet: {max_load: 2}}", "measure.quiet.max_load", "unknown key"),
    ],
)
def test_measure_target_and_quiet_errors(tmp_path: Path, measure: str, field: str, words: str) -> None:
    err = error_of(load_suite, write(tmp_path, GOOD_SUITE + f"measure: {measure}\n"))
    assert field in str(err) and words in str(err)
