"""The ``http`` node's URL: templates may fill the path and query, never the scheme, host or port."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.errors import InvalidWorkflow, SkillFailed
from engine.loader import load_workflow_text
from engine.model import RunStatus
from engine.nodes import http
from tests.unit.engine.conftest import World

WORKFLOW = """\
id: fetch
inputs:
  type: object
  properties: {url: {type: string}, path: {type: string}, port: {type: string}}
nodes:
  - id: call
    type: http
    request:
      method: GET
      url: "{url}"
"""


def _issue(url: str) -> str:
    with pytest.raises(InvalidWorkflow) as caught:
        load_workflow_text(WORKFLOW.replace("{url}", url), file="fetch.yml", roles={})
    [issue] = caught.value.issues
    assert (issue.file, issue.line, issue.node, issue.field) == ("fetch.yml", 10, "call", "request.url")
    return issue.message


@pytest.mark.parametrize(
    "url",
    [
        "{{ inputs.url }}",  # the whole URL from a run's data (issue 11: reached a metadata server)
        "http://api.example.com{{ inputs.path }}",  # path=@127.0.0.1:PORT/ moves the host (issue 11)
        "https://api.example.com:{{ inputs.port }}/items",
        "https://{{ inputs.path }}.example.com/",
        "{{ inputs.path }}://api.example.com/",
        "https://api.{% if inputs.path %}example{% endif %}.com/",
        "https://api.example.com{# note #}/x",
    ],
)
def test_a_templated_scheme_host_or_port_is_refused_at_load_time(url: str) -> None:
    message = _issue(url)
    assert "scheme, host or port comes from a template" in message
    assert "https://api.example.com/items/{{ inputs.id }}" in message  # says what to write instead
    assert "SIGNOFF_HTTP_ALLOW" in message  # and how to reach an internal service


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://deploy:hunter2@api.example.com/", "send them in a header"),
        ("https://user@api.example.com/{{ inputs.path }}", "credentials"),
        ("http://api.example.com\\\\@127.0.0.1/", "credentials"),
        ("http://api.example.com\\\\x/", "backslash"),
        ("ftp://files.example.com/{{ inputs.path }}", "must start with http:// or https://"),
        ("api.example.com/items", "must be an absolute URL"),
        ("https://api.example.com:99999/", "port must be a number"),
        ("https:///items", "host is empty"),
    ],
)
def test_other_bad_urls_are_refused_at_load_time(url: str, says: str) -> None:
    assert says in _issue(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/items/{{ inputs.path }}",
        "https://api.example.com?q={{ inputs.path }}",
        "https://api.example.com/#{{ inputs.path }}",
        "http://127.0.0.1:8080/{{ inputs.path }}",  # loads; the egress policy decides when it runs
        "https://[::1]:8443/x",
        "https://api.example.com",
    ],
)
def test_a_literal_origin_with_templated_path_and_query_loads(url: str) -> None:
    wf = load_workflow_text(WORKFLOW.replace("{url}", url), file="fetch.yml", roles={})
    assert wf.nodes["call"].type == "http"
    assert http.url_problem(url) is None


async def test_a_path_that_looks_like_a_host_stays_on_the_written_origin(
    make_world: Callable[..., World],
) -> None:
    w = make_world(WORKFLOW.replace("{url}", "https://api.example.com/{{ inputs.path }}"))
    run = await w.engine.start("fetch", {"path": "@127.0.0.1:8080/"}, requester="alice")
    await w.engine.drive(run.id)
    assert (await w.store.get_run(run.id)).status is RunStatus.succeeded
    assert [r.url for r in w.http.requests] == ["https://api.example.com/@127.0.0.1:8080/"]


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("https://api.example.com/{{ p }}", "https://api.example.com.evil.test/x"),
        ("https://api.example.com/{{ p }}", "https://api.example.com:8443/x"),
        ("https://api.example.com/{{ p }}", "http://api.example.com/x"),
        ("https://api.example.com/{{ p }}", "https://x@api.example.com/x"),
        ("https://api.example.com/{{ p }}", "https://api.example.com:nope/x"),
    ],
)
def test_a_rendered_url_that_left_its_origin_is_refused(source: str, rendered: str) -> None:
    with pytest.raises(SkillFailed, match=r"request\.url rendered to"):
        http._check_origin(source, rendered)


def test_a_rendered_url_on_its_origin_passes() -> None:
    http._check_origin("https://API.example.com/{{ p }}", "https://api.example.com/a/@b?c=d")
    http._check_origin("https://api.example.com", "https://api.example.com")
