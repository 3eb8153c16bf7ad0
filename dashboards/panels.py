"""Panel builders shared by vigil's dashboards: one datasource, units and descriptions always set.

Each helper takes a title, the question the panel answers (its description, shown under the
(i) icon in Grafana), a unit and :class:`~dashboards.queries.Query` objects, and returns a
grafana-foundation-sdk builder. Every panel and every query points at the ``$datasource``
template variable (:data:`DATASOURCE`), a Prometheus-type datasource picked in the dashboard
(it starts on Grafana's default one): no uid is baked in, so the JSON works in any Grafana,
provisioned (``provisioning/``: uid :data:`DATASOURCE_UID`) or imported.

Grafana unit ids used: ``s`` (seconds), ``ops`` (per second), ``percentunit`` (0..1 shown as
%), ``bytes``, ``short`` (plain numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import heatmap as heatmap_builders
from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.builders import stat as stat_builders
from grafana_foundation_sdk.builders import statetimeline as statetimeline_builders
from grafana_foundation_sdk.builders import table as table_builders
from grafana_foundation_sdk.builders import timeseries as timeseries_builders
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from .queries import DEFAULT_JOBS, INSTANCE_VALUES, JOB_VALUES, Query

__all__ = [
    "DATASOURCE",
    "DATASOURCE_UID",
    "DATASOURCE_VARIABLE",
    "Panel",
    "datasource_variable",
    "heatmap",
    "instance_variable",
    "job_variable",
    "row",
    "stat",
    "state_timeline",
    "table",
    "timeseries",
]

# The uid given to the datasource in provisioning/datasources/prometheus.yml (and
# provisioning/victoriametrics/): docker-compose's Grafana; the dashboards do not depend on it.
DATASOURCE_UID = "vigil-prometheus"
# The template variable every panel, query and variable queries through.
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = dashboard_models.DataSourceRef(type_val="prometheus",
                                            uid=f"${{{DATASOURCE_VARIABLE}}}")

Panel = (timeseries_builders.Panel | stat_builders.Panel | statetimeline_builders.Panel
         | heatmap_builders.Panel | table_builders.Panel)
Thresholds = Sequence[tuple[float | None, str]]

_GREEN_ONLY: Thresholds = ((None, "green"),)


def _targets(queries: Sequence[Query], *, instant: bool = False,
             fmt: prometheus_models.PromQueryFormat | None = None,
             ) -> list[prometheus_builders.Dataquery]:
    targets = []
    for index, query in enumerate(queries):
        target = (prometheus_builders.Dataquery()
                  .datasource(DATASOURCE)
                  .ref_id(chr(ord("A") + index))
                  .expr(query.expr)
                  .legend_format(query.legend)
                  .editor_mode(prometheus_models.QueryEditorMode.CODE))
        target = target.instant() if instant else target.range()
        if fmt is not None:
            target = target.format(fmt)
        targets.append(target)
    return targets


def _thresholds(steps: Thresholds) -> dashboard_builders.ThresholdsConfig:
    return (dashboard_builders.ThresholdsConfig()
            .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
            .steps([dashboard_models.Threshold(value=value, color=color)
                    for value, color in steps]))


def _value_mappings(mapping: Mapping[int, tuple[str, str]]) -> list[dashboard_models.ValueMapping]:
    """``{value: (text, color)}`` as one Grafana value-to-text mapping."""
    return [dashboard_models.ValueMap(options={
        str(value): dashboard_models.ValueMappingResult(text=text, color=color, index=index)
        for index, (value, (text, color)) in enumerate(sorted(mapping.items()))})]


def _legend() -> common_builders.VizLegendOptions:
    return (common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"]))


def _tooltip() -> common_builders.VizTooltipOptions:
    return (common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING))


def row(title: str) -> dashboard_builders.Row:
    """A row header; the panels added after it (until the next row) belong to it."""
    return dashboard_builders.Row(title)


def timeseries(title: str, description: str, unit: str, *queries: Query,
               width: int = 8, height: int = 8, stacked: bool = False, bars: bool = False,
               min_value: float | None = 0, max_value: float | None = None,
               no_value: str | None = None) -> timeseries_builders.Panel:
    """A time series graph of ``queries`` (one line, or bar, per series).

    ``no_value`` is what the panel shows when no series matches (``"0"`` for counts: one
    series per label value cannot be completed with a 0 series in PromQL).
    """
    panel = (timeseries_builders.Panel()
             .title(title).description(description).unit(unit)
             .datasource(DATASOURCE).targets(list(_targets(queries)))
             .span(width).height(height)
             .legend(_legend()).tooltip(_tooltip())
             .line_width(1).fill_opacity(20 if stacked or bars else 10)
             .show_points(common.VisibilityMode.NEVER)
             .thresholds(_thresholds(_GREEN_ONLY)))
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if no_value is not None:
        panel = panel.no_value(no_value)
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def stat(title: str, description: str, unit: str, query: Query, *,
         thresholds: Thresholds = _GREEN_ONLY,
         mappings: Mapping[int, tuple[str, str]] | None = None, no_value: str | None = None,
         width: int = 4, height: int = 4, graph: bool = True) -> stat_builders.Panel:
    """One big number: the latest value of ``query``, coloured by ``thresholds``."""
    panel = (stat_builders.Panel()
             .title(title).description(description).unit(unit)
             .datasource(DATASOURCE).targets(list(_targets([query])))
             .span(width).height(height)
             .thresholds(_thresholds(thresholds))
             .color_mode(common.BigValueColorMode.BACKGROUND)
             .graph_mode(common.BigValueGraphMode.AREA if graph else common.BigValueGraphMode.NONE)
             .text_mode(common.BigValueTextMode.VALUE_AND_NAME
                        if query.legend.startswith("{{") else common.BigValueTextMode.VALUE)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"])
                             .values(False)))
    if mappings is not None:
        panel = panel.mappings(_value_mappings(mappings))
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


def state_timeline(title: str, description: str, query: Query,
                   states: Mapping[int, tuple[str, str]], *, width: int = 24,
                   height: int = 6) -> statetimeline_builders.Panel:
    """One band per series whose colour and text come from ``states`` (value -> name, colour)."""
    return (statetimeline_builders.Panel()
            .title(title).description(description).unit("short")
            .datasource(DATASOURCE).targets(list(_targets([query])))
            .span(width).height(height)
            .mappings(_value_mappings(states))
            .thresholds(_thresholds(_GREEN_ONLY))
            .color_scheme(dashboard_builders.FieldColor()
                          .mode(dashboard_models.FieldColorModeId.THRESHOLDS))
            .show_value(common.VisibilityMode.AUTO)
            .merge_values(True)
            .row_height(0.8)
            .line_width(0)
            .fill_opacity(80)
            .legend(common_builders.VizLegendOptions()
                    .display_mode(common.LegendDisplayMode.LIST)
                    .placement(common.LegendPlacement.BOTTOM).show_legend(True))
            .tooltip(_tooltip()))


def heatmap(title: str, description: str, query: Query, *, y_unit: str, cell_unit: str,
            width: int = 12, height: int = 8) -> heatmap_builders.Panel:
    """A heatmap of a Prometheus histogram's ``le`` buckets (``query`` keeps ``le``).

    The buckets go through Grafana's "heatmap" query format (which de-accumulates them); the
    panel's unit is the cells' (``cell_unit``), the y axis is the buckets' (``y_unit``).
    """
    return (heatmap_builders.Panel()
            .title(title).description(description).unit(cell_unit)
            .datasource(DATASOURCE)
            .targets(list(_targets([query], fmt=prometheus_models.PromQueryFormat.HEATMAP)))
            .span(width).height(height)
            .calculate(False)
            .y_axis(heatmap_builders.YAxisConfig().unit(y_unit).decimals(2))
            .cell_values(heatmap_builders.CellValues().unit(cell_unit))
            .color(heatmap_builders.HeatmapColorOptions()
                   .mode(heatmap_models.HeatmapColorMode.SCHEME)
                   .scheme("Oranges").scale(heatmap_models.HeatmapColorScale.EXPONENTIAL)
                   .exponent(0.5).steps(64).fill("dark-orange").reverse(False))
            .rows_frame(heatmap_builders.RowsHeatmapOptions()
                        .layout(common.HeatmapCellLayout.LE))
            .show_legend()
            .exemplars_color("rgba(255,0,255,0.7)"))


def table(title: str, description: str, query: Query, *, hide: Sequence[str] = (),
          width: int = 12, height: int = 8, no_value: str | None = None) -> table_builders.Panel:
    """The series ``query`` returns now, one row each, their labels as columns."""
    panel = (table_builders.Panel()
             .title(title).description(description).unit("short")
             .datasource(DATASOURCE)
             .targets(list(_targets([query], instant=True,
                                    fmt=prometheus_models.PromQueryFormat.TABLE)))
             .span(width).height(height)
             .with_transformation(dashboard_models.DataTransformerConfig(
                 id_val="organize",
                 options={"excludeByName": dict.fromkeys(hide, True),
                          "indexByName": {}, "renameByName": {}}))
             .show_header(True))
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


def _variable(name: str, label: str, query: str, description: str,
              current: dashboard_models.VariableOption) -> dashboard_builders.QueryVariable:
    return (dashboard_builders.QueryVariable(name)
            .label(label)
            .description(description)
            .datasource(DATASOURCE)
            .query(query)
            .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .current(current))


def datasource_variable() -> dashboard_builders.DatasourceVariable:
    """``$datasource``: any Prometheus-type datasource (Prometheus, VictoriaMetrics, Thanos,
    Mimir), starting on Grafana's default one (the value ``default``)."""
    return (dashboard_builders.DatasourceVariable(DATASOURCE_VARIABLE)
            .label("Data source")
            .description("The Prometheus (or VictoriaMetrics, Thanos, Mimir) datasource "
                         "holding the vigil exporters' metrics and recording rules")
            .type("prometheus")
            .current(dashboard_models.VariableOption(text="default", value="default",
                                                     selected=True)))


def job_variable(default: tuple[str, ...] = DEFAULT_JOBS) -> dashboard_builders.QueryVariable:
    """``$job``: the Prometheus jobs with vigil's metrics, starting on ``default``.

    "All" is the jobs listed (Grafana's regex of them), not ``.*``: on a shared Prometheus
    ``up{job=~".*"}`` and ``ALERTS{job=~".*"}`` would be every target's and every alert.
    """
    return _variable("job", "job", JOB_VALUES,
                     "Prometheus scrape job(s) of the vigil exporters (the jobs exposing "
                     "vigil_* metrics)",
                     dashboard_models.VariableOption(text=list(default), value=list(default),
                                                     selected=True))


def instance_variable() -> dashboard_builders.QueryVariable:
    """``$instance``: the targets of the selected jobs (all of them to begin with)."""
    return (_variable("instance", "instance", INSTANCE_VALUES,
                      "Exporter target(s) (host:port) of the selected job(s)",
                      dashboard_models.VariableOption(text="All", value="$__all",
                                                      selected=True))
            .all_value(".*"))
