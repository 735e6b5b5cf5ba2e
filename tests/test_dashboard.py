"""The CloudWatch dashboard (issue 16 part 5): `idis-<env>`, drawn from the
alarms.

examples/production with a read replica, applied through the proxy. The
dashboard's body is read with boto3 directly from moto and compared with
the alarms CloudWatch holds (DescribeAlarms), never with the provider's own
reading: every line of every graph is an alarm's metric and dimensions of
this environment, every alarm is drawn, and each alarm's threshold is an
annotation of the graph its line is in.
"""

from __future__ import annotations

import json
import time

from test_environment import PREFIX, state_of
from test_monitoring import MONITORING_INPUTS, alarms_of, dims, monitored

UNPROTECTED = ("-var", "deletion_protection=false")
INPUTS = MONITORING_INPUTS + """
  db_read_replicas  = 1
"""


def dashboard(aws) -> dict | None:
    cw = aws("cloudwatch")
    try:
        return json.loads(cw.get_dashboard(DashboardName=PREFIX)["DashboardBody"])
    except cw.exceptions.ResourceNotFound:
        return None


def graphs(body: dict) -> dict[str, dict]:
    return {w["properties"]["title"]: w for w in body["widgets"] if w["type"] == "metric"}


def lines(widget: dict) -> dict[str, tuple]:
    """label -> (namespace, metric, dimensions, stat, period) of each line."""
    out = {}
    for line in widget["properties"]["metrics"]:
        *spec, options = line
        namespace, metric, *pairs = spec
        out[options["label"]] = (namespace, metric, dict(zip(pairs[::2], pairs[1::2])),
                                 options["stat"], options["period"])
    return out


def check_dashboard(aws, replicas: list[str]) -> dict:
    """The dashboard draws exactly the environment's alarms, each with its
    threshold; returns the body."""
    __tracebackhide__ = True
    body = dashboard(aws)
    assert body is not None, f"no dashboard {PREFIX}"
    alarms = alarms_of(aws)
    assert alarms, "no alarm to draw"
    drawn = {}
    for title, widget in graphs(body).items():
        thresholds = [h["value"] for h in widget["properties"]["annotations"]["horizontal"]]
        for label, line in lines(widget).items():
            assert label not in drawn, f"{label} is drawn twice"
            drawn[label] = (title, line, thresholds)
    # Every line is an alarm of this environment, every alarm is a line.
    assert sorted(drawn) == sorted(alarms), f"lines and alarms differ: {sorted(set(drawn) ^ set(alarms))}"
    for name, alarm in alarms.items():
        title, (namespace, metric, dimensions, stat, period), thresholds = drawn[name]
        assert (namespace, metric, dimensions) == (alarm["Namespace"], alarm["MetricName"], dims(alarm)), name
        assert (stat, period) == (alarm["Statistic"], alarm["Period"]), name
        assert alarm["Threshold"] in thresholds, f"{name}: threshold {alarm['Threshold']} not in {thresholds}"
    # One row per component, in order, and each replica's lag in its graph.
    headers = [w["properties"]["markdown"] for w in body["widgets"] if w["type"] == "text"]
    assert headers == ["## Database", "## Cache", "## Edge", "## NAT"]
    lag = graphs(body).get("Database: replica lag (s)")
    drawn_lag = sorted(lines(lag)) if lag else []
    assert drawn_lag == sorted(f"{r}-lag" for r in replicas)
    cdn = graphs(body)["Edge: distribution 5xx rate (%)"]
    assert cdn["properties"]["region"] == "us-east-1"
    return body


def test_the_dashboard_draws_every_alarm_is_read_back_and_follows_the_replicas(tmp_path, terraform_rc, moto,
                                                                             aws_proxy, aws):
    moto.reset()
    tf = monitored(tmp_path, terraform_rc, aws_proxy, INPUTS)
    url = ("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
           f"#dashboards/dashboard/{PREFIX}")
    # The address depends on the name and region only: the plan shows it.
    first = tf.plan(*UNPROTECTED)
    assert f'+ dashboard_url = "{url}"' in " ".join(first.stdout.split()), first.describe("the first plan")
    started = time.monotonic()
    tf.apply(*UNPROTECTED)
    print(f"apply: {time.monotonic() - started:.1f} s")
    body = check_dashboard(aws, [f"{PREFIX}-db-replica-1"])
    print(f"{len(graphs(body))} graphs, {sum(len(lines(g)) for g in graphs(body).values())} lines")
    assert state_of(tf)["dashboard_url"] == url
    clean = tf.plan("-refresh-only", "-detailed-exitcode", *UNPROTECTED, check=False)
    assert clean.returncode == 0, clean.describe("plan -refresh-only right after apply")

    # Deleted out of band: drift, in words.
    cw = aws("cloudwatch")
    cw.delete_dashboards(DashboardNames=[PREFIX])
    assert dashboard(aws) is None
    gone = tf.plan("-refresh-only", "-detailed-exitcode", *UNPROTECTED, check=False)
    assert gone.returncode == 2, gone.describe("plan -refresh-only after the dashboard was deleted")
    assert '"dashboard"' in gone.stdout
    assert f"dashboard {PREFIX} is missing" in " ".join(gone.stdout.split())
    assert "monitoring: dashboard changed outside Terraform" in gone.stdout + gone.stderr

    # Edited out of band (a graph removed, a threshold line moved): the
    # plan names the graphs, not the JSON.
    edited = json.loads(json.dumps(body))
    edited["widgets"] = [w for w in edited["widgets"]
                         if w["properties"].get("title") != "Cache: evictions"]
    cpu = next(w for w in edited["widgets"] if w["properties"].get("title") == "Database: CPU (%)")
    cpu["properties"]["annotations"]["horizontal"][0]["value"] = 99
    cw.put_dashboard(DashboardName=PREFIX, DashboardBody=json.dumps(edited))
    changed = tf.plan("-refresh-only", "-detailed-exitcode", *UNPROTECTED, check=False)
    assert changed.returncode == 2, changed.describe("plan -refresh-only after the dashboard was edited")
    words = " ".join(changed.stdout.split())
    print("\n".join(line for line in changed.stdout.splitlines() if "dashboard" in line))
    assert f"dashboard {PREFIX} was changed outside Terraform" in words
    assert "'Cache: evictions' removed" in words, words
    assert "'Database: CPU (%)' changed" in words, words
    assert '"metrics"' not in changed.stdout

    tf.apply(*UNPROTECTED)
    assert dashboard(aws) == body
    again = tf.plan("-detailed-exitcode", *UNPROTECTED, check=False)
    assert again.returncode == 0, again.describe("plan after the repair")

    # A second replica: its lag line in the same apply.
    text = (tf.workdir / "main.tf").read_text()
    (tf.workdir / "main.tf").write_text(text.replace("db_read_replicas  = 1", "db_read_replicas  = 2"))
    started = time.monotonic()
    tf.apply(*UNPROTECTED)
    print(f"apply with a second replica: {time.monotonic() - started:.1f} s")
    check_dashboard(aws, [f"{PREFIX}-db-replica-1", f"{PREFIX}-db-replica-2"])
    final = tf.plan("-refresh-only", "-detailed-exitcode", *UNPROTECTED, check=False)
    assert final.returncode == 0, final.describe("plan -refresh-only after the replica was added")

    # Destroy removes it.
    tf.destroy(*UNPROTECTED)
    assert dashboard(aws) is None
    assert PREFIX not in {d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"]}
