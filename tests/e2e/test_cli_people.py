"""``signoff people``: an administrator links a roles file's email member to a Slack id, and the
CLI then decides as that member, counted once toward the quorum."""

from __future__ import annotations

from pathlib import Path

from tests.e2e._login import PAY, ROLES
from tests.e2e._process import cli, cli_json, env_for, free_port


def test_linking_two_identities_makes_one_person_for_the_gate(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "pay.yml").write_text(PAY, encoding="utf-8")
    (tmp_path / "roles.yml").write_text(ROLES, encoding="utf-8")
    env = {
        **env_for(f"sqlite:///{tmp_path / 's.db'}", tmp_path, free_port()),
        "SIGNOFF_ROLES_FILE": "roles.yml",
    }
    run = cli_json(env, tmp_path, "run", "pay", "--as", "rita")
    [task] = [t for t in cli_json(env, tmp_path, "tasks") if t["run_id"] == run["id"]]
    refused = cli(env, tmp_path, "respond", task["id"], "approve", "--as", "U024BE7LH", check=2)
    assert "only the assignees" in refused.stderr
    cli(env, tmp_path, "people", "link", "email:Ann@Corp.example", "U024BE7LH")
    [ann] = cli_json(env, tmp_path, "people", "list")
    assert ann["identities"] == ["email:ann@corp.example", "user:U024BE7LH"]
    cli(env, tmp_path, "respond", task["id"], "approve", "--as", "U024BE7LH")
    again = cli(env, tmp_path, "respond", task["id"], "approve", "--as", "email:ann@corp.example", check=2)
    assert "already approved" in again.stderr
    cli(env, tmp_path, "people", "link", "user:fred", "email:fred@corp.example")
    conflict = cli(env, tmp_path, "people", "link", "email:fred@corp.example", "U024BE7LH", check=2)
    assert "two different people" in conflict.stderr
    assert len(cli_json(env, tmp_path, "people", "list")) == 2
    bad = cli(env, tmp_path, "people", "link", "group:S1", "U1", check=2)
    assert "is not a person" in bad.stderr


def test_a_person_prefers_a_channel(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    env = env_for(f"sqlite:///{tmp_path / 's.db'}", tmp_path, free_port())
    cli(env, tmp_path, "people", "link", "U024BE7LH", "email:ann@corp.example")
    said = cli(env, tmp_path, "people", "prefer", "email:ann@corp.example", "email")
    assert "prefers email" in said.stdout
    [ann] = cli_json(env, tmp_path, "people", "list")
    assert (ann["identities"], ann["prefers"]) == (["user:U024BE7LH", "email:ann@corp.example"], "email")
    bad = cli(env, tmp_path, "people", "prefer", "U024BE7LH", "pigeon", check=2)
    assert "is not a channel: use email, slack or none" in bad.stderr
    cli(env, tmp_path, "people", "prefer", "U024BE7LH", "none")
    assert cli_json(env, tmp_path, "people", "list")[0]["prefers"] is None
