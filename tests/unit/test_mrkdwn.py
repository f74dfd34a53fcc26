"""bot.mrkdwn: Markdown as models write it -> Slack mrkdwn."""

import pytest

from bot.links import LinkPolicy
from bot.mrkdwn import escape, link, to_mrkdwn


def test_escape():
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape("&amp;") == "&amp;amp;"   # & first, so no double meaning


def test_bold():
    assert to_mrkdwn("this is **very** important") == "this is *very* important"
    assert to_mrkdwn("**a** and **b**") == "*a* and *b*"


def test_underscore_bold_and_strike():
    assert to_mrkdwn("__x__ and ~~y~~") == "_x_ and ~y~"


@pytest.mark.parametrize("md,expected", [
    ("# Title", "*Title*"),
    ("### Deep heading  ", "*Deep heading*"),
    ("###### six", "*six*"),
    ("#not heading", "#not heading"),
])
def test_headings_become_bold(md, expected):
    assert to_mrkdwn(md) == expected


WIKI = LinkPolicy.of(hosts=["wiki.example.com", "h"])


def test_links():
    assert to_mrkdwn("see [the wiki](https://wiki.example.com/a/b)", WIKI) == \
        "see <https://wiki.example.com/a/b|the wiki>"
    assert to_mrkdwn("[x](http://h)", WIKI) == "<http://h|x>"
    # Not an http(s) link: inert.
    assert to_mrkdwn("[x](javascript:alert(1))", WIKI) == "x [link removed: a javascript address])"
    # Citation markers are not links.
    assert to_mrkdwn("fact [1][2]") == "fact [1][2]"


def test_links_not_allowed_are_inert():
    assert to_mrkdwn("see [the wiki](https://wiki.example.com/a/b)") == \
        "see the wiki [link removed: wiki[.]example[.]com]"
    assert to_mrkdwn("go to www.evil.example/x?q=1 now") == "go to [link removed: www[.]evil[.]example] now"


def test_special_characters_escaped():
    assert to_mrkdwn("a < b & c > d") == "a &lt; b &amp; c &gt; d"
    # Raw Slack control sequences written by a model are neutralised.
    assert to_mrkdwn("<!channel> <@U123>") == "&lt;!channel&gt; &lt;@U123&gt;"


def test_code_span_left_unconverted_but_escaped():
    out = to_mrkdwn("run `**x** <y> & [a](https://b)` and **bold**")
    assert out == "run `**x** &lt;y&gt; &amp; [a](https://b)` and *bold*"


def test_code_block_left_unconverted_but_escaped():
    md = "Do:\n```\n# comment\n- item **b** <tag>\n```\n# After"
    assert to_mrkdwn(md) == "Do:\n```\n# comment\n- item **b** &lt;tag&gt;\n```\n*After*"


@pytest.mark.parametrize("md,expected", [
    ("- one", "• one"),
    ("* two", "• two"),
    ("+ three", "• three"),
    ("  - nested", "  • nested"),
    ("- **bold** item", "• *bold* item"),
    ("-not a bullet", "-not a bullet"),
    ("**bold** start", "*bold* start"),
])
def test_bullets(md, expected):
    assert to_mrkdwn(md) == expected


def test_block_quote_kept_as_quote():
    assert to_mrkdwn("> quoted **x** & y") == "> quoted *x* &amp; y"
    assert to_mrkdwn(">no space") == "> no space"


def test_multiline_document():
    md = "## Steps\n\n1. Open **VPN**\n2. Log in\n\n- see [doc](https://d)"
    assert to_mrkdwn(md, LinkPolicy.of(["https://d"])) == "*Steps*\n\n1. Open *VPN*\n2. Log in\n\n• see <https://d|doc>"


def test_link_helper_escapes_label_and_url_delimiters():
    assert link("https://x/a>b|c", "A & <B> | C") == "<https://x/a%3Eb%7Cc|A &amp; &lt;B&gt; ¦ C>"
