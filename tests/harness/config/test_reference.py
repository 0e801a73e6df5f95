"""docs/formats.md is generated from the config models and must stay in step with them."""

from __future__ import annotations

from pathlib import Path

from harness.config.gate import Policy
from harness.config.inventory import Cooldown, Device, Inventory, PowerConfig
from harness.config.reference import REGENERATE, formats_reference, sections
from harness.config.suite import (
    BuiltinModel,
    Canary,
    DeviceSelector,
    FactoryModel,
    Faults,
    LeaseSettings,
    MeasureSettings,
    OnnxModel,
    Quiet,
    ReportSettings,
    Suite,
    Target,
    TfliteModel,
)

FORMATS = Path(__file__).resolve().parents[3] / "docs" / "formats.md"


def test_formats_page_is_up_to_date():
    expected = formats_reference()
    actual = FORMATS.read_text(encoding="utf-8") if FORMATS.exists() else ""
    assert actual == expected, f"docs/formats.md is stale: regenerate it with `{REGENERATE}`"


def test_every_field_has_a_description():
    missing = [f"{s.model.__module__}.{s.model.__name__}.{name}"
               for s in sections() for name, info in s.model.model_fields.items()
               if not (info.description or "").strip()]
    assert not missing, f"fields without a description (add Field(description=...)): {missing}"


def test_every_model_of_both_files_is_rendered():
    rendered = {s.model for s in sections()}
    for model in (Suite, BuiltinModel, OnnxModel, FactoryModel, TfliteModel, DeviceSelector, MeasureSettings,
                  Target, Quiet, Faults, LeaseSettings, Canary, Policy, ReportSettings,
                  Inventory, Device, PowerConfig, Cooldown):
        assert model in rendered, model.__name__
    page = formats_reference()
    for s in sections():
        assert f"\n### {s.model.__name__}\n" in page
        for name in s.model.model_fields:
            assert f"| `{name}` |" in page


def test_reference_is_deterministic():
    assert formats_reference() == formats_reference()
