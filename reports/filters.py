"""Client-side filters for device, runtime and model: markup helpers and the page's script.

Why data attributes and a tiny inline script: the page must work offline from a
``file://`` URL, so there is no server to filter and no library to load. Every filterable
element (a chart, a device block, a table row) says what it shows in ``data-device``,
``data-model`` and ``data-runtime`` (one name) or ``data-runtimes`` (a JSON list, for a
chart holding several runtimes); the script hides the ones whose names are not ticked.
Inside a chart, traces carry their runtime in plotly's ``meta``, so unticking a runtime
hides its points, and a chart whose front spans runtimes swaps that front for the fronts
of the runtimes still shown (the combined front would be stale).

Names are user strings: in attributes they are HTML-escaped (the DOM hands the script the
original text back), the script compares them as plain strings and never builds markup
from them. The filter state lives in the URL hash (``#runtime=onnxruntime&device=rpi5``),
so a filtered view can be linked to and a browser test can open one directly.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping

from reports import fmt

__all__ = ["DIMENSIONS", "FILTER_SCRIPT", "data_attrs", "filter_bar"]

#: Filterable dimensions, in the order the bar shows them.
DIMENSIONS: tuple[str, ...] = ("device", "runtime", "model")


def data_attrs(
    device: str | None = None,
    model: str | None = None,
    runtime: str | None = None,
    runtimes: Iterable[str] | None = None,
) -> str:
    """The escaped ``data-*`` attributes (with a leading space) that make an element filterable.

    Args:
        device: the one device the element shows.
        model: the one model the element shows.
        runtime: the one runtime the element shows.
        runtimes: every runtime a chart shows; the chart stays visible while any is ticked.
    """
    parts = [
        f' data-{key}="{html.escape(str(value), quote=True)}"'
        for key, value in (("device", device), ("model", model), ("runtime", runtime))
        if value is not None
    ]
    if runtimes is not None:
        names = json.dumps(sorted({str(r) for r in runtimes}), ensure_ascii=False)
        parts.append(f' data-runtimes="{html.escape(names, quote=True)}"')
    return "".join(parts)


def filter_bar(values: Mapping[str, Iterable[str]]) -> str:
    """The filter form: one group of ticked checkboxes per dimension with two or more names.

    Args:
        values: dimension -> the names present on the page.

    Returns:
        Escaped HTML, or "" when no dimension has a choice to make.
    """
    groups = []
    for dim in DIMENSIONS:
        names = sorted({str(v) for v in values.get(dim, ())})
        if len(names) < 2:
            continue
        boxes = "".join(
            f'<label><input type="checkbox" data-dim="{dim}" value="{fmt.esc(n)}" checked> '
            f"{fmt.esc(n)}</label>"
            for n in names
        )
        groups.append(f'<fieldset><legend>{dim}</legend>{boxes}</fieldset>')
    if not groups:
        return ""
    return (
        f'<form id="eh-filters" class="filters" autocomplete="off">{"".join(groups)}'
        '<button type="button" id="eh-filters-reset">show all</button>'
        '<output id="eh-filter-status"></output></form>'
    )


# Plain ES2015, no framework: runs from file:// in any current browser. Kept small on
# purpose; the rules it applies are the ones in the module docstring.
FILTER_SCRIPT = r"""
(function () {
  "use strict";
  var form = document.getElementById("eh-filters");
  if (!form) { return; }
  var DIMS = ["device", "runtime", "model"];
  var boxes = form.querySelectorAll("input[data-dim]");

  function selection() {
    var sel = {};
    boxes.forEach(function (b) {
      var d = b.getAttribute("data-dim");
      if (!sel[d]) { sel[d] = new Set(); }
      if (b.checked) { sel[d].add(b.value); }
    });
    return sel;
  }
  function shows(sel, dim, name) { return !sel[dim] || sel[dim].has(name); }
  function elementShown(sel, el) {
    var ok = DIMS.every(function (d) {
      var v = el.getAttribute("data-" + d);
      return v === null || shows(sel, d, v);
    });
    var many = el.getAttribute("data-runtimes");
    if (ok && many !== null) {
      ok = JSON.parse(many).some(function (r) { return shows(sel, "runtime", r); });
    }
    return ok;
  }
  function traceVisibility(sel, gd) {
    var present = gd.data.filter(function (t) { return t.meta && t.meta.runtime !== undefined; })
      .map(function (t) { return t.meta.runtime; });
    var all = present.every(function (r) { return shows(sel, "runtime", r); });
    return gd.data.map(function (t) {
      var m = t.meta || {};
      if (m.role === "front-all") { return all; }
      if (m.runtime === undefined) { return t.visible === undefined ? true : t.visible; }
      if (!shows(sel, "runtime", m.runtime)) { return false; }
      if (m.role === "front") { return all ? "legendonly" : true; }
      return true;
    });
  }
  function restyle(sel, gd) {
    if (!window.Plotly || !gd.data) { return; }
    var want = traceVisibility(sel, gd);
    var have = gd.data.map(function (t) { return t.visible === undefined ? true : t.visible; });
    if (want.some(function (v, i) { return v !== have[i]; })) {
      window.Plotly.restyle(gd, {visible: want});
    }
  }
  function writeHash(sel) {
    var params = new URLSearchParams();
    Object.keys(sel).forEach(function (d) {
      var all = form.querySelectorAll('input[data-dim="' + d + '"]').length;
      if (sel[d].size < all) { sel[d].forEach(function (n) { params.append(d, n); }); }
    });
    var hash = params.toString();
    try {
      history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    } catch (e) { /* some file:// contexts refuse; the view still filters */ }
  }
  function apply(updateHash) {
    var sel = selection();
    var shown = 0, total = 0;
    document.querySelectorAll("[data-device],[data-model],[data-runtime],[data-runtimes]")
      .forEach(function (el) {
        var ok = elementShown(sel, el);
        var wasHidden = el.hidden;
        el.hidden = !ok;
        if (el.classList.contains("chart")) {
          total += 1;
          if (ok) { shown += 1; }
          var gd = el.querySelector(".js-plotly-plot");
          if (gd) {
            restyle(sel, gd);
            if (ok && wasHidden && window.Plotly) { window.Plotly.Plots.resize(gd); }
          }
        }
      });
    var status = document.getElementById("eh-filter-status");
    if (status) { status.textContent = shown + " of " + total + " charts shown"; }
    if (updateHash) { writeHash(sel); }
  }
  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    DIMS.forEach(function (d) {
      var wanted = params.getAll(d);  // absent from the hash: every name of d is shown
      form.querySelectorAll('input[data-dim="' + d + '"]').forEach(function (b) {
        b.checked = !wanted.length || wanted.indexOf(b.value) >= 0;
      });
    });
  }
  form.addEventListener("change", function () { apply(true); });
  document.getElementById("eh-filters-reset").addEventListener("click", function () {
    boxes.forEach(function (b) { b.checked = true; });
    apply(true);
  });
  window.addEventListener("hashchange", function () { readHash(); apply(false); });
  readHash();
  apply(false);
})();
"""
