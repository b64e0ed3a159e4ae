"""The composited re-ID builder's target domains: the ``hard`` preset (disjoint Fashion-MNIST classes per
domain, a small colour palette shared by identities) and the unchanged default build."""

import dataclasses
import json
import os
import os.path as osp
from collections import Counter, defaultdict

import numpy as np
import pytest

from mmssod.datasets.reid import DISTRACTOR_PID, JUNK_PID, MARKET_SUBSETS, parse_market_name
from tools.benchmarks.composited import CompositedDataError, load_fashion_mnist
from tools.benchmarks.composited.canvas import child_rng
from tools.benchmarks.composited.reid import (
    TARGET_DOMAIN_ROOTS,
    TARGET_DOMAINS,
    ReIDConfig,
    build_reid,
    domain_items,
    palette_assignment,
    palette_colours,
)

from .conftest import TINY_REID

HARD_TINY = ReIDConfig.for_target_domain(
    'hard', train_ids=12, test_ids=10, num_cameras=4, num_distractors=6, num_junk=4, height=32, width=16
)


@pytest.fixture(scope='module')
def hard_root(tmp_path_factory):
    """A tiny hard-target build (seed 0)."""
    try:
        load_fashion_mnist(None, 'test')
    except CompositedDataError as err:
        pytest.skip(f'Fashion-MNIST is not installed: {err}')
    root = str(tmp_path_factory.mktemp('reid_hard') / 'composited_reid_hard')
    build_reid(root, seed=0, cfg=HARD_TINY)
    return root


def table(root, domain):
    with open(osp.join(root, domain, 'identities.json')) as f:
        return json.load(f)


def files_by_pid(root, domain):
    """subset -> pid -> list of camera ids, from the Market file names on disk."""
    out = {}
    for subset, folder in MARKET_SUBSETS.items():
        per_pid = defaultdict(list)
        for name in os.listdir(osp.join(root, domain, folder)):
            pid, camid = parse_market_name(name)[:2]
            per_pid[pid].append(camid)
        out[subset] = per_pid
    return out


def test_hard_domains_draw_from_disjoint_fashion_mnist_classes(hard_root):
    labels = {split: load_fashion_mnist(None, split)[1] for split in ('train', 'test')}
    seen = {}
    for domain in ('source', 'target'):
        t = table(hard_root, domain)
        want = set(HARD_TINY.domain_classes(domain))
        # classes read from Fashion-MNIST itself, not from what the table says
        got = {int(labels[i['fmnist_split']][i['fmnist_index']]) for i in t['identities']}
        assert got <= want, (domain, got, want)
        assert all(i['fmnist_class'] == labels[i['fmnist_split']][i['fmnist_index']] for i in t['identities'])
        assert set(t['classes']) == want
        seen[domain] = got
    assert not seen['source'] & seen['target']
    items = {
        d: {(i['fmnist_split'], i['fmnist_index']) for i in table(hard_root, d)['identities']} for d in seen
    }
    assert not items['source'] & items['target']


def test_hard_palette_colours_are_shared_by_several_identities(hard_root):
    palette = [[round(float(v), 4) for v in c] for c in palette_colours(HARD_TINY.palette_size)]
    for domain in ('source', 'target'):
        t = table(hard_root, domain)
        assert t['palette'] == palette
        for part, n in (('train', HARD_TINY.train_ids), ('test', HARD_TINY.test_ids)):
            idents = [i for i in t['identities'] if i['part'] == part]
            assert len(idents) == n
            for i in idents:
                assert i['color'] == palette[i['palette_index']]
            uses = Counter(i['palette_index'] for i in idents)
            # every palette colour is used, each by several identities (n // k or n // k + 1 of them)
            assert set(uses) == set(range(HARD_TINY.palette_size))
            assert min(uses.values()) >= 2 and max(uses.values()) - min(uses.values()) <= 1
            # an identity is its item + colour: items are distinct even where colours repeat
            assert len({i['fmnist_index'] for i in idents}) == n


def test_hard_identity_labels_and_cameras_are_consistent(hard_root):
    for domain in ('source', 'target'):
        t = table(hard_root, domain)
        cams = {i['pid']: set(i['cameras']) for i in t['identities']}
        part = {i['pid']: i['part'] for i in t['identities']}
        files = files_by_pid(hard_root, domain)
        assert set(files['train']) == {p for p, v in part.items() if v == 'train'}
        assert set(files['query']) == {p for p, v in part.items() if v == 'test'}
        for pid, camids in files['train'].items():
            assert set(camids) == cams[pid]  # every camera of the identity, and only those
            assert 2 <= len(set(camids)) <= HARD_TINY.num_cameras
        for pid, camids in files['query'].items():
            assert sorted(camids) == sorted(cams[pid])  # one query per (identity, camera)
            assert set(files['gallery'][pid]) == cams[pid]  # each query camera keeps a gallery crop
        extra = set(files['gallery']) - set(files['query'])
        assert extra <= {DISTRACTOR_PID, JUNK_PID}
        assert len(files['gallery'][DISTRACTOR_PID]) == HARD_TINY.num_distractors
        assert len(files['gallery'][JUNK_PID]) == HARD_TINY.num_junk
    with open(osp.join(hard_root, 'meta.json')) as f:
        params = json.load(f)['params']
    assert params['palette_size'] == HARD_TINY.palette_size
    assert params['target_classes'] == list(HARD_TINY.target_classes)


def test_default_build_keeps_per_identity_colours_and_the_shared_item_chunks(spcl_reid_root):
    _, root = spcl_reid_root  # the default tiny build of the SpCL tests (TINY_REID, seed 0)
    assert TARGET_DOMAINS['default'] == {}
    assert TINY_REID == dataclasses.replace(TINY_REID, source_classes=(), target_classes=(), palette_size=0)
    with open(osp.join(root, 'meta.json')) as f:
        params = json.load(f)['params']
    assert not {'source_classes', 'target_classes', 'palette_size'} & set(params)
    assert params == TINY_REID.to_dict()
    n_train, n_test = TINY_REID.train_ids, TINY_REID.test_ids
    train_perm = child_rng(0, 20, 1).permutation(60000)
    test_perm = child_rng(0, 20, 2).permutation(10000)
    for k, domain in enumerate(TINY_REID.domains):
        t = table(root, domain)
        assert 'palette' not in t and 'classes' not in t
        idents = t['identities']
        assert all('palette_index' not in i and 'fmnist_class' not in i for i in idents)
        assert len({tuple(i['color']) for i in idents}) == len(idents)  # a colour per identity
        # domain k takes chunk k of one shared permutation per Fashion-MNIST split
        assert [i['fmnist_index'] for i in idents if i['part'] == 'train'] == list(
            train_perm[k * n_train : (k + 1) * n_train]
        )
        assert [i['fmnist_index'] for i in idents if i['part'] == 'test'] == list(
            test_perm[k * n_test : (k + 1) * n_test]
        )


def test_palette_assignment_is_balanced_and_seeded():
    a = palette_assignment(14, 4, np.random.default_rng(3))
    assert sorted(Counter(a.tolist()).values()) == [3, 3, 4, 4]
    assert np.array_equal(a, palette_assignment(14, 4, np.random.default_rng(3)))
    colours = palette_colours(4)
    assert colours.shape == (4, 3) and len({tuple(c) for c in colours.round(3).tolist()}) == 4
    assert np.array_equal(colours, palette_colours(4))


def test_domain_items_keep_the_permutation_order():
    perm = np.array([5, 0, 3, 1, 4, 2])
    labels = np.array([0, 1, 0, 2, 1, 2])
    assert domain_items(perm, labels, (1, 2)).tolist() == [5, 3, 1, 4]
    assert domain_items(perm, labels, (0,)).tolist() == [0, 2]


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(source_classes=(0, 1), target_classes=(1, 2)), 'disjoint'),
        (dict(source_classes=(0, 1)), 'both be empty'),
        (dict(source_classes=(0, 10), target_classes=(3,)), 'class ids in 0..9'),
        (dict(source_classes=(0, 0), target_classes=(3,)), 'distinct'),
        (dict(palette_size=-1), 'palette_size'),
        (dict(palette_size=65), 'palette_size'),
    ],
)
def test_bad_target_domain_settings_are_refused(kwargs, message):
    with pytest.raises(CompositedDataError, match=message):
        ReIDConfig(**kwargs).validate()


def test_too_few_items_of_a_domains_classes():
    cfg = ReIDConfig.for_target_domain('hard', train_ids=5, test_ids=3)
    train_labels = np.array([5, 7, 8, 9, 5, 0, 1, 2, 3, 4, 6] * 2)
    test_labels = np.array([5, 7, 0, 1, 2, 3, 4, 6, 6])
    with pytest.raises(CompositedDataError, match='target domain: 3 test identities'):
        cfg.validate_classes(train_labels, test_labels)
    cfg.validate_classes(train_labels, np.concatenate([test_labels, [9]]))  # enough now


def test_target_domain_presets_and_their_folders():
    assert set(TARGET_DOMAINS) == set(TARGET_DOMAIN_ROOTS)
    assert len(set(TARGET_DOMAIN_ROOTS.values())) == len(TARGET_DOMAIN_ROOTS)
    hard = ReIDConfig.for_target_domain('hard', train_ids=7)
    assert hard.train_ids == 7 and hard.palette_size == TARGET_DOMAINS['hard']['palette_size']
    hard.validate()
    with pytest.raises(CompositedDataError, match='target domain must be one of'):
        ReIDConfig.for_target_domain('moon')


def test_builder_cli_builds_the_hard_target_domain(tmp_path, hard_root):
    import importlib.util

    from tests.conftest import REPO_ROOT

    spec = importlib.util.spec_from_file_location(
        'composited_reid_cli', osp.join(REPO_ROOT, 'tools/dataset_converters/composited_reid.py')
    )
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = str(tmp_path / 'hard')
    args = [
        '--out',
        out,
        '--target-domain',
        'hard',
        '--train-ids',
        '12',
        '--test-ids',
        '10',
        '--cameras',
        '4',
    ]
    args += ['--distractors', '6', '--junk', '4', '--height', '32', '--width', '16', '--no-progress']
    meta = cli.main(args)
    assert meta['params'] == HARD_TINY.to_dict()
    for domain in ('source', 'target'):  # the same build as the API's with the same settings
        assert table(out, domain) == table(hard_root, domain)
