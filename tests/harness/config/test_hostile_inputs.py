"""A corpus of hostile input, each case through the real ``harness`` entry point in this process:
suite, inventory and gate-policy files and command-line flags that are wrong in every way a
person or a broken tool could make them (wrong types, unknown keys, infinite, NaN and huge
numbers, empty, binary and non-UTF-8 files, alias bombs, deep nesting, duplicate keys, YAML
tags, unknown recipes and runtimes, missing model files, directories where files belong, bad
input shapes, eval sets, task settings and device selectors).

Every case must be exit 2 with one message that names the file, and its line and key where
there is one; never a traceback, never exit 70. And loading must fail before anything starts:
a sweep that got as far as Ray, or an inventory check as far as the boards, fails the test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import harness.coordinator.sweep as sweep_module
import harness.fleet
import harness.store
from harness.cli import main

GOOD = "name: x\nmodels: [{builtin: digits-cnn}]\nruntimes: [sleep]\n"  # line 4 is where a case adds its key
ONNX = "name: x\nmodels:\n  - name: m\n    onnx: m.onnx\n    input_shape: {shape}\n{extra}runtimes: [sleep]\n"
INV = "devices:\n  - {name: board, kind: local, runtimes: [sleep], tags: [lab]}\n"
NPZ = object()  # a file content: an npz with the wrong arrays
DIR = object()  # a file content: make a directory there instead


@dataclass(frozen=True)
class Case:
    id: str
    command: str  # sweep | check | gate | report | prune | runs | argv
    files: dict[str, object] = field(default_factory=dict)  # name -> text, bytes, NPZ or DIR (over GOOD and INV)
    argv: tuple[str, ...] = ()  # more arguments (for "argv": all of them)
    needles: tuple[str, ...] = ()  # in the message; "{s}", "{inv}", "{p}": the files' paths
    given: str = ""  # the suite (sweep) or policy (gate) file named on the command line, if not the usual
    baseline: str = "nightly"  # gate: the baseline run or tag


def suite(case_id: str, text: str, *needles: str, **files: object) -> Case:
    return Case(case_id, "sweep", {"s.yaml": text, **files}, (), needles)


def onnx(case_id: str, shape: str, *needles: str, extra: str = "", **files: object) -> Case:
    return Case(case_id, "sweep", {"s.yaml": ONNX.format(shape=shape, extra=extra), "m.onnx": b"onnx", **files}, (),
                needles)


def inventory(case_id: str, text: object, *needles: str, command: str = "sweep") -> Case:
    return Case(case_id, command, {"inv.yaml": text}, (), needles)


def policy(case_id: str, text: object, *needles: str) -> Case:
    return Case(case_id, "gate", {"p.yaml": text}, (), needles)


def bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10**9 values
    return "\n".join(lines) + "\nname: bomb\n"


DEEP = 3000
def measure(body: str) -> str:
    return GOOD + "measure: {" + body + "}\n"

CASES = [
    # -- the suite file as a whole -------------------------------------------------------------
    suite("suite-empty", "", "{s}: name: required key is missing"),
    suite("suite-only-comments", "# to do\n", "{s}: name: required key is missing"),
    suite("suite-a-list", "- a\n- b\n", "{s}:1: Input should be a valid dictionary"),
    suite("suite-a-scalar", "hello\n", "{s}: Input should be a valid dictionary"),
    suite("suite-binary", bytes(range(256)) * 8, "{s}: not a UTF-8 text file"),
    suite("suite-nul-byte", b"name: x\x00\n", "{s}:1: character 0 is not allowed"),
    suite("suite-control-character", GOOD + "description: a\x07b\n", "{s}:4: character 7 is not allowed"),
    suite("suite-latin-1", "name: caf\xe9\n".encode("latin-1"), "{s}: not a UTF-8 text file (byte 9)"),
    suite("suite-alias-bomb", bomb(), "{s}: its aliases expand to more than 1,000,000 values"),
    suite("suite-deep-lists", "name: x\nmodels: " + "[" * DEEP + "]" * DEEP + "\n", "{s}: nested too deeply"),
    suite("suite-deep-mappings", "name: x\nmodels: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n", "{s}: nested too deeply"),
    suite("suite-duplicate-key", GOOD + "name: y\n", '{s}:4: found duplicate key "name"'),
    suite("suite-duplicate-nested-key", GOOD + "measure:\n  min_s: 1\n  min_s: 2\n", '{s}:6: found duplicate key "min_s"'),
    suite("suite-unknown-key", GOOD + "colour: red\n", "{s}:4: colour: unknown key 'colour'"),
    suite("suite-list-as-key", GOOD + "? [a, b]\n: c\n", "{s}:4: ", "unknown key"),
    suite("suite-number-as-key", GOOD + "1: c\n", "{s}:4: 1: unknown key '1'"),
    suite("suite-python-tag", GOOD + "measure: !!python/object/apply:os.system [echo pwned]\n",
          "{s}:4: measure: Input should be a valid dictionary"),
    suite("suite-unknown-tag", GOOD + "measure: !include other.yaml\n", "{s}:4: measure: Input should be a valid dictionary"),
    suite("suite-int-tag-on-text", GOOD + "measure: {min_iters: !!int abc}\n", "{s}: a value YAML cannot read"),
    suite("suite-impossible-date", "name: !!timestamp 2024-13-45\nmodels: [{builtin: digits-cnn}]\n",
          "{s}: a value YAML cannot read: month must be in 1..12"),
    suite("suite-5000-digit-number", measure("seed: " + "9" * 5000), "{s}: a value YAML cannot read"),
    suite("suite-two-documents", GOOD + "---\nname: y\n", "{s}:4: but found another document"),
    suite("suite-unclosed-bracket", "name: x\nmodels: [\n", "{s}:3: expected the node content"),
    suite("suite-tab-indent", "name: x\n\tmodels: []\n", "{s}:2: found character '\\t'"),
    suite("suite-undefined-alias", "name: x\nmodels: *m\n", "{s}:2: found undefined alias 'm'"),
    suite("suite-yaml-2", "%YAML 9.9\n---\nname: x\n", "{s}:1: found incompatible YAML document"),
    suite("suite-over-4-mib", b"# " + b"x" * (5 << 20) + b"\n", "{s}: larger than 4 MiB"),
    Case("suite-path-missing", "sweep", {}, (), ("nope.yaml: file not found",), given="nope.yaml"),
    Case("suite-path-a-directory", "sweep", {"s.yaml": DIR}, (), ("{s}: is a directory, not a file",)),
    # -- names, models, input shapes -----------------------------------------------------------
    suite("suite-name-a-list", "name: [a]\nmodels: [{builtin: digits-cnn}]\n", "{s}:1: name: Input should be a valid string"),
    suite("suite-name-a-date", "name: 2024-01-01\nmodels: [{builtin: digits-cnn}]\n", "{s}:1: name: Input should be a valid string"),
    suite("suite-name-empty", "name: ''\nmodels: [{builtin: digits-cnn}]\n", "{s}:1: name: String should have at least 1"),
    suite("suite-models-missing", "name: x\n", "{s}:1: models: required key is missing"),
    suite("suite-models-empty", "name: x\nmodels: []\n", "{s}:2: models: Tuple should have at least 1 item"),
    suite("suite-models-a-string", "name: x\nmodels: digits-cnn\n", "{s}:2: models: Input should be a valid tuple"),
    suite("suite-model-a-string", "name: x\nmodels: [digits-cnn]\n", "{s}:2: models.0: a model needs one of 'builtin'"),
    suite("suite-unknown-builtin", "name: x\nmodels: [{builtin: resnet-9000}]\n", "{s}:2: models.0.builtin: unknown built-in"),
    onnx("suite-onnx-missing", "[1, 3, 8, 8]", "{s}:4: models.0.onnx: file not found", **{"m.onnx": None}),
    onnx("suite-onnx-a-directory", "[1, 3, 8, 8]", "{s}:4: models.0.onnx: a directory, not a file", **{"m.onnx": DIR}),
    suite("suite-tflite-missing", "name: x\nmodels:\n  - {name: t, tflite: t.tflite}\nruntimes: [litert]\n",
          "{s}:3: models.0.tflite: file not found"),
    onnx("suite-shape-negative", "[1, -3, 8, 8]", "{s}:5: models.0.input_shape: every dimension must be >= 1"),
    onnx("suite-shape-zero", "[1, 0, 8, 8]", "{s}:5: models.0.input_shape: every dimension must be >= 1"),
    onnx("suite-shape-empty", "[]", "{s}:5: models.0.input_shape: Tuple should have at least 1 item"),
    onnx("suite-shape-words", "[a, b]", "{s}:5: models.0.input_shape.0: Input should be a valid integer"),
    onnx("suite-shape-fraction", "[1, 3.5]", "{s}:5: models.0.input_shape.1: Input should be a valid integer"),
    onnx("suite-shape-boolean", "[true, 3]", "{s}:5: models.0.input_shape.0: Input should be a valid integer (got True)"),
    onnx("suite-shape-nan", "[1, .nan]", "{s}:5: models.0.input_shape.1: Input should be a valid integer"),
    onnx("suite-shape-huge", "[1, 3, 100000, 100000]", "{s}:5: models.0.input_shape: ", "more than 1,073,741,824"),
    onnx("suite-shape-past-int64", "[1, 99999999999999999999999]", "{s}:5: models.0.input_shape: ", "more than"),
    onnx("suite-shape-a-number", "224", "{s}:5: models.0.input_shape: Input should be a valid tuple"),
    onnx("suite-shape-40-dims", "[" + ", ".join(["1"] * 40) + "]", "{s}:5: models.0.input_shape: ", "at most 16"),
    onnx("suite-shape-unnamed-input", "{'': [1, 3]}", "{s}:5: models.0.input_shape: an input name in input_shape is empty"),
    suite("suite-tflite-shape-negative", "name: x\nmodels:\n  - {name: t, tflite: t.tflite, input_shape: [1, -1]}\n"
          "runtimes: [litert]\n", "{s}:3: models.0.input_shape: every dimension must be >= 1", **{"t.tflite": b"tfl3"}),
    suite("suite-factory-not-importable", "name: x\nmodels:\n  - {name: f, factory: nosuch_mod:build, input_shape: [1, 3]}\n",
          "{s}:3: models.0.factory: cannot import 'nosuch_mod:build'"),
    suite("suite-factory-not-a-function", "name: x\nmodels:\n  - {name: f, factory: 'os:sep', input_shape: [1, 3]}\n",
          "{s}:3: models.0.factory: 'os:sep' is not a function"),
    suite("suite-factory-not-a-reference", "name: x\nmodels:\n  - {name: f, factory: 'not a ref', input_shape: [1, 3]}\n",
          "{s}:3: models.0.factory: String should match pattern"),
    # -- eval sets and tasks -------------------------------------------------------------------
    onnx("suite-eval-missing", "[1, 3, 8, 8]", "{s}:6: models.0.eval: file not found", extra="    eval: nope.npz\n"),
    onnx("suite-eval-a-directory", "[1, 3, 8, 8]", "{s}:6: models.0.eval: a directory, not a file",
         extra="    eval: imgs\n", imgs=DIR),
    onnx("suite-eval-not-a-zip", "[1, 3, 8, 8]", "{s}:3: models.0: eval: cannot read eval set", "File is not a zip file",
         extra="    eval: e.npz\n", **{"e.npz": b"garbage"}),
    onnx("suite-eval-without-x", "[1, 3, 8, 8]", "{s}:3: models.0: eval: eval set", "has no array 'x'",
         extra="    eval: e.npz\n", **{"e.npz": NPZ}),
    onnx("suite-eval-a-number", "[1, 3, 8, 8]", "{s}:6: models.0.eval: eval is an npz file", extra="    eval: 5\n"),
    suite("suite-task-unknown-kind", "name: x\nmodels:\n  - {builtin: digits-cnn, task: {kind: telepathy}}\n",
          "{s}:3: models.0.task: Input tag 'telepathy'"),
    suite("suite-task-unknown-key", "name: x\nmodels:\n  - {builtin: digits-cnn, task: {kind: classification, colour: 1}}\n",
          "{s}:3: models.0.task.classification.colour: unknown key 'colour'"),
    suite("suite-task-unknown-decoder", "name: x\nmodels:\n  - {builtin: digits-cnn, task: {kind: detection, decode: yolov99}}\n",
          "{s}:3: models.0.task.detection.decode: String should match pattern"),
    suite("suite-task-a-string", "name: x\nmodels:\n  - {builtin: digits-cnn, task: detection}\n",
          "{s}:3: models.0.task: Input should be a valid dictionary"),
    suite("suite-task-detection-on-a-classifier",
          "name: x\nmodels:\n  - {builtin: digits-cnn, task: {kind: detection, decode: yolov8}}\n",
          "{s}:3: models.0: a built-in model is a classifier"),
    # -- variants, runtimes, devices -----------------------------------------------------------
    suite("suite-unknown-recipe", GOOD + "variants: [fp33]\n", "{s}:4: variants.0: ", "unknown recipe 'fp33'"),
    suite("suite-chain-empty-step", GOOD + "variants: ['fp32 > ']\n", "{s}:4: variants.0: variant chain 'fp32 > ' has an empty step"),
    suite("suite-variants-empty", GOOD + "variants: []\n", "{s}:4: variants: Tuple should have at least 1 item"),
    suite("suite-variants-a-number", GOOD + "variants: 5\n", "{s}:4: variants: Input should be a valid tuple"),
    suite("suite-recipe-unknown-kind", GOOD + "recipes:\n  mine: {kind: int9}\n", "{s}:5: recipes", "unknown kind 'int9'"),
    suite("suite-unknown-runtime", GOOD.replace("[sleep]", "[tensorflow-lite-pro]"),
          "{s}:3: runtimes: unknown runtime 'tensorflow-lite-pro'"),
    suite("suite-runtimes-a-mapping", GOOD.replace("[sleep]", "{a: 1}"), "{s}:3: runtimes: Input should be a valid tuple"),
    suite("suite-runtime-option-negative", GOOD + "runtime_options: {sleep: {latency_ms: -1}}\n",
          "{s}:4: runtime_options.sleep.latency_ms: ", "must be a number >= 0"),
    suite("suite-runtime-options-unknown-runtime", GOOD + "runtime_options: {warp: {x: 1}}\n",
          "{s}:4: runtime_options: unknown runtime 'warp'"),
    suite("suite-devices-unknown-key", GOOD + "devices: {hosts: [a]}\n", "{s}:4: devices.hosts: unknown key 'hosts'"),
    suite("suite-devices-names-a-number", GOOD + "devices: {names: 5}\n", "{s}:4: devices.names: Input should be a valid tuple"),
    suite("suite-devices-unknown-kind", GOOD + "devices: {kinds: [toaster]}\n", "{s}:4: devices.kinds.0: Input should be 'jetson'"),
    suite("suite-devices-unknown-name", GOOD + "devices: {names: [ghost]}\n",
          "{s}:4: devices.names.0: unknown device or pool 'ghost'; the inventory has: board"),
    suite("suite-devices-nothing-matches", GOOD + "devices: {tags: [gpu]}\n",
          "{s}:4: devices: no device in the inventory matches the suite's 'devices' selection"),
    suite("suite-devices-a-list", GOOD + "devices: [a, b]\n", "{s}:4: devices: Input should be a valid dictionary"),
    # -- numbers -------------------------------------------------------------------------------
    suite("suite-seed-negative", measure("seed: -1"), "{s}:4: measure.seed: Input should be greater than or equal to 0"),
    suite("suite-seed-huge", measure("seed: 100000000000000000000000"), "{s}:4: measure.seed: Input should be less than"),
    suite("suite-min-iters-1e30", measure("min_iters: 1e30"), "{s}:4: measure.min_iters: "),
    suite("suite-min-iters-fraction", measure("min_iters: 2.5"), "{s}:4: measure.min_iters: Input should be a valid integer"),
    suite("suite-min-s-nan", measure("min_s: .nan"), "{s}:4: measure.min_s: Input should be a finite number"),
    suite("suite-timeout-infinite", measure("timeout_s: .inf"), "{s}:4: measure.timeout_s: Input should be a finite number"),
    suite("suite-timeout-zero", measure("timeout_s: 0"), "{s}:4: measure.timeout_s: Input should be greater than 0"),
    suite("suite-timeout-with-unit", measure("timeout_s: 10s"), "{s}:4: measure.timeout_s: Input should be a valid number"),
    suite("suite-warmup-negative", measure("warmup_s: -1"), "{s}:4: measure.warmup_s: Input should be greater than or equal to 0"),
    suite("suite-threads-a-word", measure("threads: many"), "{s}:4: measure.threads: Input should be a valid integer"),
    suite("suite-measure-a-list", GOOD + "measure: [1, 2]\n", "{s}:4: measure: Input should be a valid dictionary"),
    suite("suite-lease-ttl-zero", GOOD + "lease: {ttl_s: 0}\n", "{s}:4: lease.ttl_s: Input should be greater than or equal to 5"),
    suite("suite-lease-ttl-1e11", GOOD + "lease: {ttl_s: 1e11}\n", "{s}:4: lease.ttl_s: Input should be less than or equal to 86400"),
    suite("suite-retries-negative", GOOD + "retries: -1\n", "{s}:4: retries: Input should be greater than or equal to 0"),
    suite("suite-down-after-negative", GOOD + "faults: {down_after: -2}\n", "{s}:4: faults.down_after: "),
    suite("suite-grace-infinite", GOOD + "faults: {grace_s: .inf}\n", "{s}:4: faults.grace_s: Input should be a finite number"),
    suite("suite-canary-every-negative", GOOD + "canary: {every: -1}\n", "{s}:4: canary.every: Input should be greater than or equal to 1"),
    suite("suite-report-budget-negative", GOOD + "report: {latency_budget_ms: -5}\n", "{s}:4: report.latency_budget_ms: "),
    suite("suite-inline-gate-word", GOOD + "gate: {latency_p50: {max_increase: lots}}\n",
          "{s}:4: gate.latency_p50.max_increase: expected a percentage like '5%'"),
    # -- the inventory -------------------------------------------------------------------------
    inventory("inventory-empty", "", "{inv}: devices: required key is missing"),
    inventory("inventory-devices-a-string", "devices: board\n", "{inv}:1: devices: Input should be a valid tuple"),
    inventory("inventory-no-devices", "devices: []\n", "{inv}:1: devices: Tuple should have at least 1 item"),
    inventory("inventory-unknown-kind", INV.replace("kind: local", "kind: toaster"), "{inv}:2: devices.0.kind: Input should be 'jetson'"),
    inventory("inventory-duplicate-name", INV + "  - {name: board, kind: local, runtimes: [sleep]}\n",
              "{inv}:3: devices.1.name: duplicate device name 'board'"),
    inventory("inventory-port-past-65535", "devices:\n  - {name: b, kind: pi, host: h, port: 70000, runtimes: [sleep]}\n",
              "{inv}:2: devices.0.port: Input should be less than or equal to 65535"),
    inventory("inventory-port-negative", "devices:\n  - {name: b, kind: pi, host: h, port: -22, runtimes: [sleep]}\n",
              "{inv}:2: devices.0.port: Input should be greater than or equal to 1"),
    inventory("inventory-port-a-word", "devices:\n  - {name: b, kind: pi, host: h, port: ssh, runtimes: [sleep]}\n",
              "{inv}:2: devices.0.port: Input should be a valid integer"),
    inventory("inventory-no-host", "devices:\n  - {name: b, kind: pi, runtimes: [sleep]}\n",
              "{inv}:2: devices.0: device 'b' of kind 'pi' needs a 'host'"),
    inventory("inventory-host-key-policy", "devices:\n  - {name: b, kind: pi, host: h, host_key_policy: trust-all, runtimes: [sleep]}\n",
              "{inv}:2: devices.0.host_key_policy: Input should be 'strict' or 'accept-new'"),
    inventory("inventory-unknown-runtime", INV.replace("[sleep]", "[sleep, warp]"), "{inv}:2: devices.0.runtimes: unknown runtime 'warp'"),
    inventory("inventory-unknown-power-source", "devices:\n  - {name: b, kind: local, runtimes: [sleep], power: {source: hamster}}\n",
              "{inv}:2: devices.0.power.source: Input should be 'auto'"),
    inventory("inventory-cooldown-nan", "devices:\n  - {name: b, kind: local, runtimes: [sleep], cooldown: {max_temp_c: .nan}}\n",
              "{inv}:2: devices.0.cooldown.max_temp_c: Input should be a finite number"),
    inventory("inventory-defaults-unknown-key", "defaults: {colour: red}\n" + INV, "{inv}:1: defaults.colour: unknown key 'colour'"),
    inventory("inventory-name-with-comma", "devices:\n  - {name: 'a,b', kind: local, runtimes: [sleep]}\n",
              "{inv}:2: devices.0.name: String should match pattern"),
    inventory("inventory-name-with-newline", 'devices:\n  - {name: "a\\nb", kind: local, runtimes: [sleep]}\n',
              "{inv}:2: devices.0.name: String should match pattern"),
    inventory("inventory-pool-named-like-a-device",
              "devices:\n  - {name: a, kind: local, runtimes: [sleep]}\n  - {name: b, kind: pi, host: h, pool: a, runtimes: [sleep]}\n",
              "{inv}:3: devices.1.pool: pool 'a' has the name of a device"),
    inventory("inventory-tags-a-string", "devices:\n  - {name: b, kind: local, runtimes: [sleep], tags: lab}\n",
              "{inv}:2: devices.0.tags: Input should be a valid tuple"),
    inventory("inventory-workdir-a-number", "devices:\n  - {name: b, kind: local, runtimes: [sleep], workdir: 5}\n",
              "{inv}:2: devices.0.workdir: Input should be a valid string"),
    inventory("inventory-binary", b"\xff\xfe\x00\x01" * 64, "{inv}: not a UTF-8 text file"),
    inventory("inventory-a-directory", DIR, "{inv}: is a directory, not a file"),
    inventory("inventory-check-empty", "", "{inv}: devices: required key is missing", command="check"),
    inventory("inventory-check-unknown-kind", INV.replace("kind: local", "kind: mainframe"),
              "{inv}:2: devices.0.kind: Input should be 'jetson'", command="check"),
    # -- the gate's policy ---------------------------------------------------------------------
    policy("policy-unknown-metric", "latency_p75: {max_increase: 5%}\n", "{p}:1: latency_p75: unknown key 'latency_p75'"),
    policy("policy-increase-a-word", "latency_p50: {max_increase: lots}\n", "{p}:1: latency_p50.max_increase: expected a percentage"),
    policy("policy-increase-negative", "latency_p50: {max_increase: -5%}\n", "{p}:1: latency_p50.max_increase: "),
    policy("policy-increase-1e9", "latency_p50: {max_increase: 1e9}\n", "{p}:1: latency_p50.max_increase: Input should be less than"),
    policy("policy-increase-infinite", "latency_p50: {max_increase: .inf}\n", "{p}:1: latency_p50.max_increase: Input should be a finite"),
    policy("policy-fdr-2", "fdr: 2\n", "{p}:1: fdr: Input should be less than 1"),
    policy("policy-overrides-a-mapping", "overrides: {device: pi}\n", "{p}:1: overrides: Input should be a valid tuple"),
    policy("policy-override-unknown-match", "overrides:\n  - match: {board: pi}\n    latency_p50: {max_increase: 5%}\n",
           "{p}:2: overrides.0.match.board: unknown key 'board'"),
    policy("policy-degraded-maybe", "degraded: maybe\n", "{p}:1: degraded: Input should be 'fail' or 'ignore'"),
    policy("policy-drop-nan", "accuracy: {max_drop: .nan}\n", "{p}:1: accuracy.max_drop: Input should be a finite number"),
    policy("policy-binary", bytes(range(128, 256)), "{p}: not a UTF-8 text file"),
    policy("policy-a-list", "- latency_p50\n", "{p}:1: Input should be a valid dictionary"),
    policy("policy-a-directory", DIR, "{p}: is a directory, not a file"),
    policy("policy-duplicate-key", "fdr: 0.1\nfdr: 0.2\n", '{p}:2: found duplicate key "fdr"'),
    Case("policy-missing", "gate", {}, (), ("nope.yaml: file not found",), given="nope.yaml"),
    # -- command-line flags --------------------------------------------------------------------
    Case("flag-timeout-nan", "argv", {}, ("inventory", "check", "--timeout", "nan"), ("--timeout", "seconds must be > 0")),
    Case("flag-timeout-negative", "argv", {}, ("inventory", "check", "--timeout", "-1"), ("--timeout", "seconds must be > 0")),
    Case("flag-timeout-infinite", "argv", {}, ("inventory", "check", "--timeout", "inf"), ("--timeout", "at most 86400")),
    Case("flag-devices-unknown", "sweep", {}, ("--devices", "ghost"), ("--devices: unknown device or pool 'ghost'",)),
    Case("flag-tags-unknown", "sweep", {}, ("--tags", "nowhere"), ("--tags: no device has any of the tags 'nowhere'",)),
    Case("flag-check-devices-unknown", "check", {}, ("--devices", "ghost"), ("--devices: unknown device 'ghost'",)),
    Case("flag-keep-negative", "prune", {}, ("--keep", "-1"), ("--keep must be 0 or more",)),
    Case("flag-keep-a-word", "prune", {}, ("--keep", "all"), ("argument --keep: invalid int value: 'all'",)),
    Case("flag-budget-nan", "report", {}, ("--budget-ms", "nan"), ("--budget-ms: a budget must be a positive number",)),
    Case("flag-budget-negative", "report", {}, ("--budget-ms", "-5"), ("--budget-ms: a budget must be a positive number",)),
    Case("flag-unknown", "sweep", {}, ("--colour", "red"), ("unrecognized arguments: --colour red",)),
    Case("flag-resume-unknown-run", "sweep", {}, ("--resume", "nosuchrun"), ("no run 'nosuchrun' in",)),
    Case("flag-baseline-unknown", "gate", {}, (), ("no run or tag 'weekly'",), baseline="weekly"),
    Case("flag-lease-unknown-device", "argv", {}, ("lease", "break", "ghost", "--inventory", "{inv}"),
         ("DEVICE: unknown device 'ghost'; the inventory has: board",)),
    Case("flag-store-not-a-store", "runs", {"h.db": b"not sqlite" * 100}, (), ("is not a results store",)),
]


class SweepStarted(BaseException):
    """Raised where a sweep would start Ray or an inventory check would reach its boards: the
    input passed loading (not an Exception: the CLI's bug handler must not swallow it)."""


@pytest.fixture(autouse=True)
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def started(*args: object, **kwargs: object) -> None:
        raise SweepStarted("loading passed: the command went on to start its work")

    monkeypatch.setattr(sweep_module, "ray_session", started)
    monkeypatch.setattr(harness.fleet, "check_inventory", started)


def materialize(case: Case, tmp: Path) -> dict[str, Path]:
    files: dict[str, object] = {"s.yaml": GOOD, "inv.yaml": INV, **case.files}
    for name, content in files.items():
        path = tmp / name
        if content is None:
            continue
        if content is DIR:
            path.mkdir()
        elif content is NPZ:
            np.savez(path.with_suffix(""), images=np.zeros((2, 3, 8, 8), np.float32))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content), encoding="utf-8")
    return {"s": tmp / "s.yaml", "inv": tmp / "inv.yaml", "p": tmp / "p.yaml", "store": tmp / "h.db"}


def command_line(case: Case, paths: dict[str, Path], tmp: Path) -> list[str]:
    extra = [a.format(**paths) for a in case.argv]
    store = ["--store", str(paths["store"])]
    if case.command in ("gate", "report", "prune") and case.id != "flag-store-not-a-store":
        with harness.store.open(paths["store"]) as st:  # a baseline and a candidate, both finished
            for tag in ("nightly", None):
                st.finish_run(st.create_run(suite="x", config={}, tag=tag), "ok", {})
    if case.command == "sweep":
        return ["sweep", str(tmp / (case.given or "s.yaml")), "--inventory", str(paths["inv"]), "--cache-dir",
                str(tmp / "cache"), "--no-report", "-q", *store, *extra]
    if case.command == "check":
        return ["inventory", "check", "--inventory", str(paths["inv"]), "--cache-dir", str(tmp / "cache"), *extra]
    if case.command == "gate":
        policy = ["--policy", str(tmp / (case.given or "p.yaml"))] if case.given or "p.yaml" in case.files else []
        return ["gate", "--candidate", "latest", "--baseline", case.baseline, *store, *policy]
    if case.command == "report":
        return ["report", "-o", str(tmp / "r.html"), *store, *extra]
    if case.command == "prune":
        return ["runs", "prune", *store, *extra]
    if case.command == "runs":
        return ["runs", "list", *store]
    return extra


def test_the_corpus_has_at_least_60_distinct_cases() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    inputs = {(c.command, tuple(sorted((k, repr(v)) for k, v in c.files.items())), c.argv, c.given, c.baseline)
              for c in CASES}
    assert len(inputs) == len(CASES)  # no case repeats another's input
    kinds = {c.id.split("-")[0] for c in CASES}
    assert kinds == {"suite", "inventory", "policy", "flag"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_exit_2_with_one_message_naming_the_place(case: Case, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    paths = materialize(case, tmp_path)
    code = main(command_line(case, paths, tmp_path))
    out, err = capsys.readouterr()
    said = " ".join((err + out).split())  # rich wraps long lines
    assert code == 2, said
    assert "Traceback" not in said and "internal error" not in said, said
    for needle in case.needles:
        assert needle.format(**paths) in said, said
    assert said.count("error:") == 1, said  # one message
