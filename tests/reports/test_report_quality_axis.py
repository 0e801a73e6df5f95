"""The quality axis of the fronts: a model's task metric (mAP, mIoU, top-1, a custom metric)
where its jobs have one, else top-1 accuracy (``reports.axes.quality_axis``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.axes import ACCURACY_AXIS, quality_axis
from reports.sections import ParetoSection
from reports.sections.base import ReportContext
from tests.reports.report_data import FACTS, RUN_INFO, synthetic_results


def test_the_task_metric_names_the_axis_when_present() -> None:
    assert quality_axis(pd.DataFrame({"accuracy": [0.7]})) is ACCURACY_AXIS  # an older store: no column
    assert quality_axis(pd.DataFrame({"accuracy": [0.7], "quality": [np.nan], "quality_metric": [None]})) is ACCURACY_AXIS
    det = quality_axis(pd.DataFrame({"quality": [0.41, 0.39], "quality_metric": ["map_50_95", "map_50_95"]}))
    assert (det.column, det.title, det.scale, det.maximize) == ("quality", "mAP@[.5:.95] (%)", 100.0, True)
    assert det.format(0.412) == ACCURACY_AXIS.format(0.412)
    seg = quality_axis(pd.DataFrame({"quality": [0.6], "quality_metric": ["miou"]}))
    assert seg.title == "mIoU (%)" and seg.label == "mIoU"
    custom = quality_axis(pd.DataFrame({"quality": [12.5], "quality_metric": ["wer_score"]}))
    assert (custom.title, custom.scale) == ("wer_score", 1.0)  # a custom metric as it is, not in %


def test_a_detector_is_plotted_against_its_map() -> None:
    df = synthetic_results()
    det = (df["model"] == "yolo-det") & (df["status"] == "ok")
    df["quality"] = np.where(det, np.linspace(0.3, 0.4, len(df)), np.nan)
    df["quality_metric"] = np.where(det, "map_50_95", None)
    figures = ParetoSection().render(ReportContext(df, RUN_INFO, FACTS)).figures
    ys = {f.layout.title.text.split(":")[0]: f.layout.yaxis.title.text for f in figures}
    assert ys["yolo-det on jetson-orin-nano"] == "mAP@[.5:.95] (%)"  # no eval accuracy, but a task metric
    assert ys["resnet18 on jetson-orin-nano"] == "accuracy (%)"
