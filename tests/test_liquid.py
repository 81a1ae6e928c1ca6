"""The Liquid that Carpentries lessons use, rendered as Jekyll renders it:
site values, Jekyll's include with a templated path and parameters, if and
unless, assign, capture, for, comment and raw; a missing include named."""

from __future__ import annotations

from lab import liquid

SITE = {"snippets": "/snippets_library/Site_slurm", "remote": {"prompt": "[me@login1 ~]$", "user": "me"},
        "sched": {"submit": {"name": "sbatch", "options": ""}, "flag": {"user": "-u me"}, "status": "squeue"},
        "names": ["a", "b"]}


def render(text: str, includes=None, site=None):
    return liquid.render(text, site or SITE, includes or __import__("pathlib").Path("/nonexistent"),
                         (site or SITE)["snippets"])


def test_values_and_conditions():
    page = render("{{ site.remote.prompt }} {{ site.sched.submit.name }} "
                  "{% if site.sched.submit.options != '' %}{{ site.sched.submit.options }} {% endif %}job.sh")
    assert page.text == "[me@login1 ~]$ sbatch job.sh"
    with_options = dict(SITE, sched=dict(SITE["sched"], submit={"name": "sbatch", "options": "-A def-prof"}))
    assert render("{% if site.sched.submit.options != '' %}{{ site.sched.submit.options }}{% else %}none"
                  "{% endif %}", site=with_options).text == "-A def-prof"
    assert render("{% unless site.remote.gone %}kept{% endunless %}|{% if site.remote.gone %}no{% elsif "
                  "site.remote.user == 'me' %}me{% else %}else{% endif %}").text == "kept|me"
    assert render("{{ site.remote.gone | default: 'fallback' }}").text == "fallback"


def test_assign_capture_for_comment_raw():
    text = ("{% assign who = site.remote.user %}{% capture cmd %}{{ site.sched.status }} -u {{ who }}{% endcapture %}"
            "[{{ cmd }}]{% for n in site.names %}<{{ n }}>{% endfor %}{% comment %}gone {{ x }}{% endcomment %}"
            "{% raw %}{{ kept }}{% endraw %}")
    assert render(text).text == "[squeue -u me]<a><b>{{ kept }}"


def test_jekyll_includes_with_a_templated_path_and_parameters(tmp_path):
    snip = tmp_path / "snippets_library" / "Site_slurm" / "scheduler"
    snip.mkdir(parents=True)
    (snip / "status.snip").write_text("```\nJOBID USER\n7 {{ site.remote.user }} {{ include.state }}\n```\n"
                                      "{: .output}\n")
    page = render('before\n{% include {{ site.snippets }}/scheduler/status.snip state="R" %}\nafter\n'
                  "{% include figure.html %}", includes=tmp_path)
    assert page.text == ("before\n<!-- lab-snippet: scheduler/status.snip -->\n```\nJOBID USER\n7 me R\n```\n"
                         "{: .output}\n\nafter\n")
    assert page.missing == ["figure.html"]


def test_a_tag_it_does_not_play_is_named_and_left_out():
    page = render("a{% seo %}b{%- if true -%}  c  {%- endif -%}")
    assert page.unknown == ["seo"] and page.text == "abc"
