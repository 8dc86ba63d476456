"""Prompts in the console read as Slack shows them (bold, italic, strike, code, links, mentions),
and data put into a prompt stays text: it cannot make markup, tags, attributes or links."""

from __future__ import annotations

import pytest

from bot.web._filters import duration
from bot.web._markup import slack_html, slack_plain
from engine.shown import escape_markup


@pytest.mark.parametrize(
    ("markup", "html"),
    [
        ("Pay *now*?", "Pay <strong>now</strong>?"),
        ("_soon_ or ~never~", "<em>soon</em> or <del>never</del>"),
        ("run `signoff show`", "run <code>signoff show</code>"),
        ("```a *b*\nc```", "<pre>a *b*\nc</pre>"),
        (
            "see <https://x.example/a?b=1&amp;c=2|the rules>",
            'see <a href="https://x.example/a?b=1&amp;c=2" rel="noopener noreferrer">the rules</a>',
        ),
        (
            "<https://x.example>",
            '<a href="https://x.example" rel="noopener noreferrer">https://x.example</a>',
        ),
        (
            "*see <https://x.example|this>*",
            '<strong>see <a href="https://x.example" rel="noopener noreferrer">this</a></strong>',
        ),
        (
            "ask <@U024BE7LH> in <#C123|general>, <!here>",
            'ask <span class="mention">@U024BE7LH</span> in <span class="mention">#general</span>, '
            '<span class="mention">@here</span>',
        ),
        ("<!subteam^S1|@finance>", '<span class="mention">@finance</span>'),
        ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 &lt; 2 &amp;&amp; 3 &gt; 2"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),  # not at word boundaries
        ("* not bold *", "* not bold *"),
    ],
)
def test_slack_markup_becomes_html(markup: str, html: str) -> None:
    assert str(slack_html(markup)) == html


@pytest.mark.parametrize(
    "data",
    [
        "*bold* _it_ ~s~ `c`",
        "<script>alert(1)</script>",
        '" onmouseover="alert(1)',
        "<https://evil.example|Approve here>",
        "<javascript:alert(1)|x>",
        "&lt;b&gt;",
        "\ue0000\ue000",
    ],
)
def test_data_in_a_prompt_stays_text(data: str) -> None:
    html = str(slack_html(f"Vendor *says*: {escape_markup(data)}"))
    assert html.startswith("Vendor <strong>says</strong>: ")
    rest = html.removeprefix("Vendor <strong>says</strong>: ")
    assert "<" not in rest.replace("&lt;", "")
    for tag in ("<a ", "<strong>", "<em>", "<del>", "<code>"):
        assert tag not in rest


def test_links_only_for_web_and_mail_addresses() -> None:
    html = str(slack_html("<javascript:alert(1)|click> <mailto:a@b.example|mail>"))
    assert "javascript:alert(1)|click" in html
    assert '<a href="javascript' not in html
    assert '<a href="mailto:a@b.example" rel="noopener noreferrer">mail</a>' in html
    assert str(slack_html('<https://x.example/"onclick=|x>')).count('"') == 4  # the quote is escaped


def test_plain_lines_drop_markers_and_keep_link_labels() -> None:
    assert (
        slack_plain("Pay *ACME* <https://x.example|the invoice> `now` &lt;3") == "Pay ACME the invoice now <3"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0.25, "250 ms"),
        (4.26, "4.3 s"),
        (200, "3m 20s"),
        (7500, "2h 5m"),
        (97200, "1d 3h"),
        (-90, "1m 30s"),
    ],
)
def test_one_duration_format(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
