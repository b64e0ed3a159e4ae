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
    path = next(p for p, (text, _, _) in rendered.items() if 'results:ddep/gated-1pct' in text)
    text = rendered[path][0]
    region = re.search(r'<!-- results:ddep/gated-1pct -->\n.*?<!-- /results -->', text, re.S)
    digit = re.search(r'\d\.\d\d', region[0]).start() + region.start()
    edited = text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1 :]
    new, stale = render_docs.render(edited)
    assert stale == ['ddep/gated-1pct'] and new == text  # rendering restores the saved number


def test_unknown_region_names_the_table(tmp_path):
    with pytest.raises(KeyError, match='ddep/no-such-table'):
        render_docs.render('<!-- results:ddep/no-such-table -->\n| x |\n<!-- /results -->\n')
