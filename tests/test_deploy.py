"""The external-scheduler examples in deploy/ parse and call the cycle endpoint hourly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
ENDPOINT = "/api/ml/self-learning-cycle"


def _load(name: str) -> dict[Any, Any]:
    document = yaml.safe_load((DEPLOY / name).read_text())
    assert isinstance(document, dict)
    return document


def test_the_kubernetes_cronjob_runs_hourly_one_at_a_time_with_the_key_from_a_secret() -> None:
    job = _load("k8s-cronjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "CronJob")
    spec = job["spec"]
    assert spec["schedule"].split()[1:] == ["*", "*", "*", "*"]
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "curl" in container["image"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ADFLYWHEEL_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]["name"]
    command = " ".join(container["command"] + container["args"])
    assert ENDPOINT in command and "Bearer ${ADFLYWHEEL_ADMIN_KEY}" in command
    assert "all_accounts" in command


def test_the_github_workflow_is_hourly_with_a_replay_input_and_not_active_here() -> None:
    workflow = _load("github-actions-cycle.yml")
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert isinstance(triggers, dict)
    assert triggers["schedule"][0]["cron"].split()[1:] == ["*", "*", "*", "*"]
    assert "as_of" in triggers["workflow_dispatch"]["inputs"]
    (step,) = workflow["jobs"]["cycle"]["steps"]
    assert ENDPOINT in step["run"] and "secrets.ADFLYWHEEL_ADMIN_KEY" in str(step["env"])
    assert not (DEPLOY.parent / ".github" / "workflows" / "github-actions-cycle.yml").exists()


def test_the_crontab_line_is_hourly_and_posts_with_the_admin_key() -> None:
    lines = [
        line
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    (line,) = lines
    fields = line.split(maxsplit=5)
    assert fields[0].isdigit() and 0 <= int(fields[0]) <= 59
    assert fields[1:5] == ["*", "*", "*", "*"]
    command = fields[5]
    assert "%" not in command  # cron would turn it into a newline
    assert ENDPOINT in command and "-X POST" in command and "Authorization: Bearer" in command
