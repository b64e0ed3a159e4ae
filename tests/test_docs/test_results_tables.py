"""The results tables of the docs are the saved runs' numbers: every marked region re-renders from
``docs/benchmarks/results/`` to the text the docs hold, and a number edited by hand fails the check."""

import re

import pytest

from tools.benchmarks import render_docs


@pytest.fixture(scope='module')
def rendered():
    """``{path: (text, re-rendered text, stale region names)}`` for every document, one shared cache."""
    cache = {}
    out = {}
    for path in render_docs.documents():
        with open(path) as f:
            text = f.read()
        out[path] = (text, *render_docs.render(text, cache=cache))
    return out


def test_every_results_region_matches_its_saved_runs(rendered):
    stale = {path: names for path, (_, _, names) in rendered.items() if names}
    assert not stale, f'regions differ from their saved runs, run tools/benchmarks/render_docs.py: {stale}'
    regions = [m['name'] for text, _, _ in rendered.values() for m in render_docs.REGION.finditer(text)]
    assert 'methods/summary' in regions and len(regions) >= 5
    assert {name.split('/')[0] for name in regions} >= {'methods', 'ddep'}


def test_a_number_edited_by_hand_fails_the_check(rendered):
    """In a copy of each document, the last digit of the last number in each region is changed: the check
    names exactly that region, and re-rendering restores the saved number."""
    cache = {}
    for path, (text, _, _) in rendered.items():
        for region in render_docs.REGION.finditer(text):
            digit = [m.start() for m in re.finditer(r'\d', region['body'])][-1] + region.start('body')
            edited = text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1 :]
            new, stale = render_docs.render(edited, cache=cache)
            assert stale == [region['name']] and new == text, (path, region['name'])


def test_unknown_region_names_the_table():
    with pytest.raises(KeyError, match='ddep/no-such-table'):
        render_docs.render('<!-- results:ddep/no-such-table -->\n| x |\n<!-- /results -->\n')


def test_check_command_passes_on_the_docs(capsys):
    assert render_docs.main(['--check']) == 0
    assert '0 regions stale' in capsys.readouterr().out
