"""``signoff serve`` as a real process with only SMTP configured (local mode, no login): the
checkpoint is mailed, and its link decides once from the page the server shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.e2e._console import form_for
from tests.e2e._mail import links, smtp_server
from tests.e2e._process import cli_json, env_for, free_port, kill, start_server, wait_healthy

WORKFLOW = """\
id: pay
inputs: {type: object, properties: {amount: {type: number}}, required: [amount]}
nodes:
  - id: approve
    type: human
    title: "Pay {{ inputs.amount }}"
    assignee: "email:ann@corp.example"
    options: [approve, reject]
"""


def _wait(check: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


async def test_a_served_process_mails_the_link_and_decides_once(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "pay.yml").write_text(WORKFLOW, encoding="utf-8")
    (tmp_path / "roles.yml").write_text("", encoding="utf-8")
    port = free_port()
    with smtp_server() as smtp:
        env = env_for(
            f"sqlite:///{tmp_path / 's.db'}",
            tmp_path,
            port,
            SIGNOFF_PUBLIC_URL=f"http://127.0.0.1:{port}",
            SIGNOFF_SMTP_HOST="127.0.0.1",
            SIGNOFF_SMTP_PORT=str(smtp.port),
            SIGNOFF_SMTP_FROM="signoff@corp.example",
            SIGNOFF_SMTP_STARTTLS="off",
            SIGNOFF_SECRET_KEY_FILE=str(tmp_path / "secret_key"),
        )
        server = start_server(env, tmp_path)
        try:
            wait_healthy(port, server)
            started = cli_json(env, tmp_path, "run", "pay", "--input", "amount=42", "--as", "rita")
            _wait(lambda: bool(smtp.to("ann@corp.example")))
            [path] = links(smtp.to("ann@corp.example")[0])
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
                text = ""
                for _ in range(3):  # scanners and previews: nothing happens
                    async with browser.get(base + path) as page:
                        assert page.status == 200
                        text = await page.text()
                assert cli_json(env, tmp_path, "show", started["id"])["decisions"] == []
                form = form_for(text, path)
                data = {**form.hidden, "decision": "approve"}
                async with browser.post(base + path, data=data) as resp:
                    assert resp.status == 200, await resp.text()
                async with browser.post(base + path, data=data) as again:
                    assert again.status in {400, 409}
            shown = cli_json(env, tmp_path, "show", started["id"])
            assert [(d["action"], d["actor"], d["channel"]) for d in shown["decisions"]] == [
                ("approve", "email:ann@corp.example", "email")
            ]
        finally:
            kill(server)
