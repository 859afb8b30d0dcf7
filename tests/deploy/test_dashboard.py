"""Schema-level checks of the operator's Grafana dashboard and Prometheus alert rules.

* deploy/grafana/tradevault-dashboard.json: loads, panels have unique ids, a type, a title and
  a gridPos inside the 24-column grid without overlaps; every target queries ${DS_PROMETHEUS}
  and every metric/label it names is exported by tradevault/metrics.py (parsed from the source)
  or listed in NEEDS_ADDING below.
* deploy/prometheus/tradevault-alerts.yml: loads (PyYAML), groups/rules have alert, expr, for,
  labels.severity, annotations.summary/description,
  and name only known metrics.
* With promtool on PATH (Debian package ``prometheus``): ``promtool check rules`` on the rules,
  ``promtool test rules`` on tradevault-alerts.test.yml, and the dashboard's queries parsed as
  PromQL. Skipped, with the reason, when promtool is absent.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "tradevault-dashboard.json"
RULES = ROOT / "deploy" / "prometheus" / "tradevault-alerts.yml"
SCRAPE = ROOT / "deploy" / "prometheus" / "scrape-tradevault.yml"
RULE_TESTS = Path(__file__).resolve().parent / "tradevault-alerts.test.yml"
METRICS_PY = ROOT / "tradevault" / "metrics.py"

# Metrics the dashboard and the rules use that tradevault/metrics.py does not export yet
# (name -> label names). Remove an entry once metrics.py exports it.
NEEDS_ADDING: dict[str, tuple[str, ...]] = {
    "tradevault_postgres_slot_retained_bytes": ("slot",),  # gauge: pg_current_wal_lsn() - restart_lsn
}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"instance", "job"}
JOBS = {"full", "incremental", "drill", "verify", "retention", "consolidate"}  # the agent's job names
SEVERITIES = {"critical", "warning", "info"}
EXPECTED_ALERTS = {
    "TradevaultNoFullBackup", "TradevaultDrillFailed", "TradevaultCaptureLagHigh",
    "TradevaultLocationBehind", "TradevaultPostgresSlotRetainingWal", "TradevaultAgentDown",
    "TradevaultCaptureRestarted",
}
METRIC_RE = re.compile(r"\btradevault_[A-Za-z0-9_]*")
DURATION_RE = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


# -- metrics exported by tradevault/metrics.py -----------------------------------------------
def exported_metrics() -> dict[str, set[str]]:
    """Series names (with the suffixes prometheus_client adds) -> label names, from the source."""
    suffixes = {"Gauge": ("",), "Counter": ("_total", "_created"), "Summary": ("_count", "_sum", "_created"),
                "Histogram": ("_bucket", "_count", "_sum", "_created"), "Info": ("_info",), "Enum": ("",)}
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(METRICS_PY.read_text())):
        if not isinstance(node, ast.Call):
            continue
        kind = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if kind not in suffixes or not node.args or not isinstance(node.args[0], ast.Constant):
            continue
        name = node.args[0].value
        labels_node = node.args[2] if len(node.args) > 2 else next(
            (kw.value for kw in node.keywords if kw.arg == "labelnames"), None)
        labels = set(ast.literal_eval(labels_node)) if labels_node is not None else set()
        base = name.removesuffix("_total") if kind == "Counter" else name
        for suffix in suffixes[kind]:
            found[base + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return found


def known_metrics() -> dict[str, set[str]]:
    known = exported_metrics()
    known.update({name: set(labels) for name, labels in NEEDS_ADDING.items()})
    return known


def test_metrics_source_parses() -> None:
    exported = exported_metrics()
    assert {"tradevault_capture_lag_seconds", "tradevault_capture_lag_events",
            "tradevault_last_success_timestamp_seconds", "tradevault_bytes_written_total",
            "tradevault_errors_total", "tradevault_drill_restore_seconds"} <= set(exported)
    assert exported["tradevault_errors_total"] == {"job", "kind"}
    assert exported["tradevault_bytes_written_total"] == {"kind"}


def test_needs_adding_is_not_already_exported() -> None:
    already = set(NEEDS_ADDING) & set(exported_metrics())
    assert not already, f"metrics.py exports {sorted(already)} now: drop them from NEEDS_ADDING"


def check_expr(expr: str, where: str) -> set[str]:
    """Every tradevault_ name in expr is known and every label it matches on exists; returns the names."""
    known = known_metrics()
    names = set(METRIC_RE.findall(expr))
    assert names, f"{where}: no tradevault_ metric in {expr!r}"
    unknown = names - set(known)
    assert not unknown, f"{where}: unknown metrics {sorted(unknown)} (not in metrics.py nor NEEDS_ADDING)"
    allowed = set(TARGET_LABELS).union(*(known[n] for n in names))
    for selector in re.findall(r"\{([^{}]*)\}", expr):
        for label in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", selector):
            assert label in allowed, f"{where}: label {label!r} is not on {sorted(names)}: {expr!r}"
    for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        for label in filter(None, (x.strip() for x in grouping.split(","))):
            assert label in allowed, f"{where}: grouping label {label!r} is not on {sorted(names)}: {expr!r}"
    for value in re.findall(r'\bjob\s*=~?\s*"([^"]*)"', expr):
        jobs = set(value.split("|"))
        assert jobs <= JOBS, f"{where}: unknown jobs {sorted(jobs - JOBS)}"
    return names


# -- dashboard -------------------------------------------------------------------------------
def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(all_panels(panel.get("panels") or []))  # collapsed rows keep their panels inside
    return out


def test_dashboard_top_level() -> None:
    dash = load_dashboard()
    assert isinstance(dash["schemaVersion"], int) and 36 <= dash["schemaVersion"] <= 41
    assert dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"]["uid"] == "${DS_PROMETHEUS}"
            check_expr(var["query"]["query"] if isinstance(var["query"], dict) else var["query"],
                       f"variable {var['name']}")


def test_dashboard_panels() -> None:
    panels = all_panels(load_dashboard()["panels"])
    assert panels
    ids = [p.get("id") for p in panels]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        assert isinstance(panel.get("type"), str) and panel["type"], panel.get("id")
        assert isinstance(panel.get("title"), str) and panel["title"].strip(), panel.get("id")
        grid = panel.get("gridPos")
        assert isinstance(grid, dict), panel["title"]
        assert all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")), (panel["title"], grid)
        assert grid["h"] > 0 and grid["w"] > 0 and grid["x"] >= 0 and grid["y"] >= 0, (panel["title"], grid)
        assert grid["x"] + grid["w"] <= 24, (panel["title"], grid)
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
        if panel["type"] != "row":
            assert panel.get("targets"), f"{panel['title']!r} has no queries"
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


def test_dashboard_targets_use_known_metrics() -> None:
    used: set[str] = set()
    for panel in all_panels(load_dashboard()["panels"]):
        ref_ids = [t.get("refId") for t in panel.get("targets") or []]
        assert len(ref_ids) == len(set(ref_ids)), f"{panel['title']!r}: duplicate refIds"
        for target in panel.get("targets") or []:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert isinstance(target.get("expr"), str) and target["expr"].strip(), panel["title"]
            used |= check_expr(target["expr"], f"panel {panel['title']!r} {target['refId']}")
    # every exported and every requested metric is on the dashboard (the _created series aside)
    wanted = {n for n in known_metrics() if not n.endswith("_created")}
    assert wanted <= used, f"metrics not on the dashboard: {sorted(wanted - used)}"


def test_dashboard_has_the_operator_panels() -> None:
    exprs = {p["title"]: " ".join(t["expr"] for t in p.get("targets", []))
             for p in all_panels(load_dashboard()["panels"])}
    joined = "\n".join(exprs.values())
    assert "time() - " in joined and "tradevault_last_success_timestamp_seconds" in joined
    assert re.search(r"rate\(tradevault_bytes_written_total", joined)
    assert re.search(r"increase\(tradevault_errors_total", joined)
    assert any("tradevault_capture_lag_seconds" in e and "tradevault_capture_lag_events" in e for e in exprs.values())


# -- alert rules -----------------------------------------------------------------------------
def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    doc = load_yaml(RULES)
    assert isinstance(doc, dict) and set(doc) == {"groups"}, "top level must be {groups: [...]}"
    assert isinstance(doc["groups"], list) and doc["groups"]
    rules = []
    for group in doc["groups"]:
        assert isinstance(group.get("name"), str) and group["name"]
        assert isinstance(group.get("rules"), list) and group["rules"], group["name"]
        rules.extend(group["rules"])
    return rules


def test_alert_rules_schema() -> None:
    names = []
    for rule in alert_rules():
        assert isinstance(rule.get("alert"), str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]), rule
        name = rule["alert"]
        names.append(name)
        assert isinstance(rule.get("expr"), str) and rule["expr"].strip(), name
        assert isinstance(rule.get("for"), str) and DURATION_RE.match(rule["for"]), f"{name}: for {rule.get('for')!r}"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity"
        annotations = rule.get("annotations") or {}
        for key in ("summary", "description"):
            assert isinstance(annotations.get(key), str) and annotations[key].strip(), f"{name}: annotations.{key}"
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, f"{name}: {set(rule)}"
        check_expr(rule["expr"], f"alert {name}")
    assert len(names) == len(set(names)), f"duplicate alerts: {names}"
    assert set(names) == EXPECTED_ALERTS


def test_alert_thresholds() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    assert ("26 * 3600" in rules["TradevaultNoFullBackup"]["expr"]
            and 'job="full"' in rules["TradevaultNoFullBackup"]["expr"])
    drill = rules["TradevaultDrillFailed"]["expr"]
    assert "tradevault_drill_ok == 0" in drill and 'tradevault_errors_total{job="drill"}' in drill
    assert re.search(r"tradevault_capture_lag_seconds\)\s*>\s*60\b", rules["TradevaultCaptureLagHigh"]["expr"])
    assert rules["TradevaultCaptureLagHigh"]["for"] == "5m"
    assert rules["TradevaultLocationBehind"]["for"] == "10m"
    assert "> 1024 * 1024 * 1024" in rules["TradevaultPostgresSlotRetainingWal"]["expr"]
    assert rules["TradevaultAgentDown"]["expr"].strip() == "absent(tradevault_capture_lag_seconds)"
    assert rules["TradevaultAgentDown"]["for"] == "5m"


def test_scrape_config_keeps_the_job_label() -> None:
    """The agent's own `job` label (full, drill, ...) survives the scrape only with honor_labels."""
    doc = load_yaml(SCRAPE)
    jobs = [j for j in doc["scrape_configs"] if j["job_name"] == "tradevault"]
    assert len(jobs) == 1 and jobs[0]["honor_labels"] is True
    assert doc["rule_files"] == [RULES.name]


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not on PATH (Debian package 'prometheus'): rules not checked by Prometheus itself")
    return path


def _run(*args: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"


def test_promtool_check_rules() -> None:
    _run(_promtool(), "check", "rules", str(RULES))


def test_promtool_check_scrape_config() -> None:
    _run(_promtool(), "check", "config", "--syntax-only", str(SCRAPE))


def test_promtool_rule_unit_tests() -> None:
    _run(_promtool(), "test", "rules", str(RULE_TESTS))


def test_promtool_parses_dashboard_queries(tmp_path: Path) -> None:
    """The dashboard's queries, with Grafana's variables filled in, are valid PromQL."""
    promtool = _promtool()
    grafana_vars = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$instance": ".*"}
    exprs = [t["expr"] for p in all_panels(load_dashboard()["panels"]) for t in p.get("targets") or []]
    rules = []
    for n, expr in enumerate(exprs):
        for var, value in grafana_vars.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
        rules.append({"record": f"tradevault:dashboard_query_{n}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # JSON is YAML
    _run(promtool, "check", "rules", str(path))
