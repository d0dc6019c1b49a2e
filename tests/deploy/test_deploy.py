"""The external-scheduler examples in deploy/ parse and call the cycle endpoint hourly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENDPOINT = "/api/ml/self-learning-cycle"


def _crontab_line() -> str:
    (line,) = [
        line
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    return line


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
    (post,) = pod["initContainers"]
    assert "curl" in post["image"]
    env = {e["name"]: e for e in post["env"]}
    assert env["ADFLYWHEEL_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]["name"]
    command = " ".join(post["command"] + post["args"])
    assert ENDPOINT in command and "Bearer ${ADFLYWHEEL_ADMIN_KEY}" in command
    assert "all_accounts" in command
    (check,) = pod["containers"]
    assert check["command"][0] == "python3"
    (volume,) = pod["volumes"]
    assert {m["name"] for m in post["volumeMounts"] + check["volumeMounts"]} == {volume["name"]}


def test_the_github_workflow_is_hourly_with_a_replay_input_and_not_active_here() -> None:
    workflow = _load("github-actions-cycle.yml")
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert isinstance(triggers, dict)
    assert triggers["schedule"][0]["cron"].split()[1:] == ["*", "*", "*", "*"]
    assert "as_of" in triggers["workflow_dispatch"]["inputs"]
    (step,) = workflow["jobs"]["cycle"]["steps"]
    assert ENDPOINT in step["run"] and "secrets.ADFLYWHEEL_ADMIN_KEY" in str(step["env"])
    assert step["shell"] == "bash" and "set -euo pipefail" in step["run"]
    assert not (DEPLOY.parent / ".github" / "workflows" / "github-actions-cycle.yml").exists()


def test_the_crontab_line_is_hourly_and_posts_with_the_admin_key() -> None:
    fields = _crontab_line().split(maxsplit=5)
    assert fields[0].isdigit() and 0 <= int(fields[0]) <= 59
    assert fields[1:5] == ["*", "*", "*", "*"]
    command = fields[5]
    assert "%" not in command  # cron would turn it into a newline
    assert ENDPOINT in command and "-X POST" in command and "Authorization: Bearer" in command


# What the endpoint answers with all_accounts: always 200, one report per account.
ALL_DONE = {"accounts": 2, "reports": [{"account_id": 1, "status": "completed"}] * 2}
ONE_BUSY = {
    "accounts": 2,
    "reports": [
        {"account_id": 1, "status": "completed"},
        {"account_id": 2, "status": "busy", "error": "the cycle of 13:00 is running"},
    ],
}
ONE_PARTIAL = {
    "accounts": 1,
    "reports": [{"account_id": 3, "status": "partial", "errors": {"fetch_actuals": "boom"}}],
}
# (answer body, curl's exit status, whether the scheduler's command must succeed)
CASES = [
    (json.dumps(ALL_DONE), 0, True),
    (json.dumps(ONE_BUSY), 0, False),
    (json.dumps(ONE_PARTIAL), 0, False),
    (json.dumps({"detail": "all_accounts needs an admin API key"}), 22, False),  # 403
    ("", 7, False),  # the service is unreachable
]
FAKE_CURL = """#!/bin/sh
# Stands in for curl: writes $FAKE_BODY to stdout or to -o's file, exits with $FAKE_STATUS.
out=""
while [ $# -gt 0 ]; do
  case "$1" in -o) out="$2"; shift ;; esac
  shift
done
if [ -n "$out" ]; then printf '%s' "$FAKE_BODY" > "$out"; else printf '%s' "$FAKE_BODY"; fi
exit "${FAKE_STATUS:-0}"
"""


def _environment(tmp_path: Path, body: str, curl_status: int) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    curl = bin_dir / "curl"
    curl.write_text(FAKE_CURL)
    curl.chmod(0o755)
    (tmp_path / ".adflywheel-admin-key").write_text("the-key")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "ADFLYWHEEL_URL": "http://adflywheel.invalid",
        "ADFLYWHEEL_ADMIN_KEY": "the-key",
        "AS_OF": "",
        "FAKE_BODY": body,
        "FAKE_STATUS": str(curl_status),
    }


@pytest.mark.parametrize(("body", "curl_status", "succeeds"), CASES)
def test_the_crontab_line_fails_unless_every_account_completed(
    tmp_path: Path, body: str, curl_status: int, succeeds: bool
) -> None:
    command = _crontab_line().split(maxsplit=5)[5]
    env = _environment(tmp_path, body, curl_status)
    done = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True)
    assert (done.returncode == 0) is succeeds, done.stderr
    assert (tmp_path / "adflywheel-cycle.log").read_text() == body  # logged either way
    if succeeds:
        assert done.stdout == done.stderr == ""  # nothing for cron to mail
    elif curl_status == 0:
        assert "not completed" in done.stderr and '"account_id": ' in done.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="the workflow's shell is bash")
@pytest.mark.parametrize(("body", "curl_status", "succeeds"), CASES)
def test_the_github_workflow_fails_unless_every_account_completed(
    tmp_path: Path, body: str, curl_status: int, succeeds: bool
) -> None:
    (step,) = _load("github-actions-cycle.yml")["jobs"]["cycle"]["steps"]
    env = _environment(tmp_path, body, curl_status)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-c", step["run"]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert (done.returncode == 0) is succeeds, done.stderr
    if curl_status == 0:
        summary = json.loads(done.stdout.splitlines()[-1])
        assert summary["accounts"] == len(json.loads(body)["reports"])
        assert len(summary["not_completed"]) == (0 if succeeds else 1)


@pytest.mark.parametrize(("body", "curl_status", "succeeds"), CASES)
def test_the_kubernetes_job_fails_unless_every_account_completed(
    tmp_path: Path, body: str, curl_status: int, succeeds: bool
) -> None:
    """The Job succeeds only when both its init container (the POST) and its check succeed."""
    pod = _load("k8s-cronjob.yaml")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (post,), (check,) = pod["initContainers"], pod["containers"]
    report = tmp_path / "report"
    report.mkdir()
    env = _environment(tmp_path, body, curl_status)
    (script,) = post["args"]
    posted = subprocess.run(
        [*post["command"], script.replace("/report/", f"{report}/")],
        env=env,
        capture_output=True,
        text=True,
    )
    if posted.returncode != 0:
        assert not succeeds
        return
    program, path = check["args"]
    assert path.startswith("/report/")
    checked = subprocess.run(
        [*check["command"], program, str(report / Path(path).name)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert (checked.returncode == 0) is succeeds, checked.stderr
    if not succeeds:
        assert "not completed" in checked.stderr
