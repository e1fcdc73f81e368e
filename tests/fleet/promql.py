"""Metric names in PromQL expressions (dashboards, rules), to compare with what the kiosk exposes.

Not a PromQL parser: strings, label matchers, ranges and grouping clauses are removed, then
every remaining identifier that is not a function, keyword or aggregation is a metric name.
"""

from __future__ import annotations

import re

FUNCTIONS = frozenset(
    """abs absent absent_over_time avg_over_time ceil changes clamp clamp_max clamp_min count_over_time day_of_month
    day_of_week days_in_month delta deriv exp floor histogram_quantile holt_winters hour idelta increase irate
    label_join label_replace label_values ln log10 log2 max_over_time min_over_time minute month predict_linear rate
    resets round scalar sort sort_desc sqrt time timestamp vector year sum avg min max count stddev stdvar topk bottomk
    quantile count_values group by without on ignoring group_left group_right bool and or unless offset
    humanizeDuration""".split()
)

_LABEL_VALUES = re.compile(r"label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    text = _LABEL_VALUES.sub(
        r"\1", expr
    )  # Grafana's label_values(metric, label): label is no metric
    text = _STRING.sub('""', text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"(?<![\w.])\d+(\.\d+)?(e[+-]?\d+)?(?![\w.])", " ", text)
    return {m for m in _IDENT.findall(text) if m not in FUNCTIONS}
