"""Recording rules are checked as ``promtool check rules`` checks them: a bad
rule is refused with a message naming the file, the rule and the field, and
``alamos rules check`` exits 0 (valid), 1 (a problem) or 2 (usage)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from alamos.cli import main
from alamos.rules import Rule, RulesError, RuleSet

GOOD = """
[[rules]]
metric = "demo_requests"
help = "Requests by handler and status"
name_glob = "* /kv"
group_by = ["name", "status"]

[[rules]]
metric = "demo_request_seconds"
aggregation = "duration_histogram"
buckets = [0.001, 0.01, 0.1]
path = "demo.api*"
level = "prod"

[[rules]]
metric = "job:bytes:sum"
aggregation = "sum(bytes)"
group_by = ["route=http.route", "http.method"]
attributes = { "http.method" = "PUT", code = 200 }
labels = { team = "storage" }
status = ["ok", "unset"]
max_series = 10
"""

BAD = """
[[rules]]
metric = "http-requests"

[[rules]]
metric = "slow"
name_regex = "GET (/kv"

[[rules]]
metric = "avg_latency"
aggregation = "avg"

[[rules]]
metric = "ok_rule"

[[rules]]
metric = "ok_rule"

[[rules]]
metric = "hist"
aggregation = "duration_histogram"
buckets = [0.5, 0.1]
group_by = ["le"]
labels = { "team-name" = "x" }
"""

BAD_PROBLEMS = [
    "{f}: rule 1: field 'metric': invalid metric name 'http-requests': use letters, digits, "
    "'_' and ':', not starting with a digit (regex [a-zA-Z_:][a-zA-Z0-9_:]*)",
    "{f}: rule 2 ('slow'): field 'name_regex': invalid regex 'GET (/kv': missing ), "
    "unterminated subpattern at position 4",
    "{f}: rule 3 ('avg_latency'): field 'aggregation': unknown aggregation 'avg': use one of "
    "count, duration_sum, duration_histogram, sum(<attribute>)",
    "{f}: rule 6 ('hist'): field 'buckets': the bounds must increase strictly, got [0.5, 0.1]",
    "{f}: rule 6 ('hist'): field 'group_by': the label name 'le' is reserved "
    "('__*', 'le', 'overflow')",
    "{f}: rule 6 ('hist'): field 'labels': invalid label name 'team-name': use letters, "
    "digits and '_', not starting with a digit (regex [a-zA-Z_][a-zA-Z0-9_]*)",
    "{f}: rule 5 ('ok_rule'): field 'metric': duplicate name: rule 4 ('ok_rule') records "
    "'ok_rule' already; give each rule its own metric name",
]


def write(tmp_path: Path, text: str, name: str = "rules.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads_every_rule(tmp_path: Path) -> None:
    rules = RuleSet.from_toml(write(tmp_path, GOOD))
    assert [r.metric for r in rules] == ["demo_requests", "demo_request_seconds", "job:bytes:sum"]
    third = rules.rules[2]
    assert third.sum_attribute == "bytes"
    assert third.label_names == ("route", "http_method")
    assert third.attributes == (("http.method", "PUT"), ("code", 200))
    assert third.labels == (("team", "storage"),)
    assert rules.rules[1].bucket_ns() == (1_000_000, 10_000_000, 100_000_000)
    assert rules.rules[1].kind == "histogram"


def test_every_problem_names_the_rule_and_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(RulesError) as caught:
        RuleSet.from_toml(path)
    assert [str(p) for p in caught.value.problems] == [p.format(f=path) for p in BAD_PROBLEMS]
    assert [(p.index, p.field) for p in caught.value.problems] == [
        (1, "metric"),
        (2, "name_regex"),
        (3, "aggregation"),
        (6, "buckets"),
        (6, "group_by"),
        (6, "labels"),
        (5, "metric"),
    ]


def test_python_rules_are_checked_when_made() -> None:
    with pytest.raises(RulesError, match=r"field 'name_glob': give only one of name"):
        Rule("x", name="a", name_glob="b*")
    with pytest.raises(RulesError, match=r"field 'metric': the name 'alamos_rule_overflow_total'"):
        Rule("alamos_rule_overflow_total")
    with pytest.raises(RulesError, match=r"field 'buckets': buckets are for aggregation"):
        Rule("x", buckets=[1.0])
    with pytest.raises(RulesError, match=r"field 'max_series': expected an int >= 1"):
        Rule("x", max_series=0)
    with pytest.raises(RulesError, match=r"field 'level': unknown level 'warn'"):
        Rule("x", level=["prod", "warn"])
    with pytest.raises(RulesError, match=r"field 'group_by': duplicate label name 'name'"):
        Rule("x", group_by=["name", "name=other"])
    # A counter "x" and a histogram "x" would both be called x in a registry.
    with pytest.raises(RulesError, match=r"rule 2 \('x_total'\): field 'metric': duplicate name"):
        RuleSet([Rule("x"), Rule("x_total")])
    with pytest.raises(RulesError, match=r"records 'h_bucket' already"):
        RuleSet([Rule("h", aggregation="duration_histogram"), Rule("h_bucket")])


def test_the_number_of_rules_is_limited() -> None:
    RuleSet([Rule(f"r{i}") for i in range(3)], max_rules=3)
    with pytest.raises(RulesError, match=r"4 rules, more than the maximum of 3"):
        RuleSet([Rule(f"r{i}") for i in range(4)], max_rules=3)


def test_unknown_fields_and_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\nmetric = "a"\nnme = "GET"\n\n[other]\nx = 1\n')
    with pytest.raises(RulesError) as caught:
        RuleSet.from_toml(path)
    assert [(p.index, p.field) for p in caught.value.problems] == [(None, "other"), (1, "nme")]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_command_success_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    code, out, err = run("rules", "check", str(path))
    assert (code, out, err) == (0, f"Checking {path}\n  SUCCESS: 3 rules found\n\n", "")


def test_check_command_failure_exits_1_and_lists_every_problem(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD, "good.toml")
    bad = write(tmp_path, BAD, "bad.toml")
    code, out, err = run("rules", "check", str(good), str(bad))
    assert code == 1
    assert out == f"Checking {good}\n  SUCCESS: 3 rules found\n\nChecking {bad}\n"
    assert err == "  FAILED:\n" + "".join(p.format(f=bad) + "\n" for p in BAD_PROBLEMS) + "\n"


def test_check_command_unreadable_file_exits_1_and_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    code, _out, err = run("rules", "check", str(missing))
    assert code == 1
    assert err.startswith(f"  FAILED:\n{missing}: field 'file': cannot read it: ")
    not_toml = write(tmp_path, "[[rules]\n", "broken.toml")
    code, _, err = run("rules", "check", str(not_toml))
    assert code == 1
    assert f"{not_toml}: field 'file': not valid TOML: " in err
    code, _, err = run("rules", "check")
    assert code == 2
    assert "Missing argument 'FILES...'" in err
    code, _, err = run("rules", "check", "--strict", str(missing))
    assert code == 2
    assert "No such option '--strict'" in err
