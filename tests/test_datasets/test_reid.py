"""Market-1501 naming, the MarketReIDDataset and the composited two-domain re-ID benchmark."""

import filecmp
import json
import os
import os.path as osp
from collections import defaultdict

import pytest

from mmssod.datasets.reid import (
    MarketReIDDataset,
    ReIDLayoutError,
    format_market_name,
    list_reid_folder,
    parse_market_name,
)
from tools.benchmarks.composited.reid import build_reid

SUBSET_DIRS = {'train': 'bounding_box_train', 'query': 'query', 'gallery': 'bounding_box_test'}


@pytest.mark.parametrize(
    'name, pid, camid',
    [
        ('0002_c1s1_000451_03.jpg', 2, 0),
        ('-1_c3s1_000012_00.jpg', -1, 2),
        ('0000_c6s2_064592_01.jpg', 0, 5),
        ('1500_c6s3_086567_01.jpg', 1500, 5),
        ('0001_c001_00016450_0.jpg', 1, 0),  # VeRi-776 style
        ('some/dir/0042_c12s1_000001_00.png', 42, 11),
    ],
)
def test_parse_market_name(name, pid, camid):
    assert parse_market_name(name) == (pid, camid)


@pytest.mark.parametrize('name', ['abc.jpg', '0001_s1_000001.jpg', '0001_c0s1_000001_00.jpg', 'c1_0001.jpg'])
def test_parse_market_name_rejects_other_names(name):
    with pytest.raises(ValueError, match='naming'):
        parse_market_name(name)


def test_format_and_parse_round_trip():
    for pid in (-1, 0, 1, 37, 999, 9999):
        for camid in (0, 1, 5, 14):
            name = format_market_name(pid, camid, seq=2, frame=123, box=4)
            assert parse_market_name(name) == (pid, camid)
    assert format_market_name(2, 0, 1, 451, 3) == '0002_c1s1_000451_03.jpg'
    assert format_market_name(-1, 2, 1, 12, 0) == '-1_c3s1_000012_00.jpg'
    with pytest.raises(ValueError):
        format_market_name(10000, 0)


def test_generated_names_parse_back_to_identity_table(reid_root, tiny_reid_cfg):
    for domain in tiny_reid_cfg.domains:
        with open(osp.join(reid_root, domain, 'identities.json')) as f:
            table = json.load(f)
        idents = {i['pid']: i for i in table['identities']}
        train_pids = {p for p, i in idents.items() if i['part'] == 'train'}
        test_pids = {p for p, i in idents.items() if i['part'] == 'test'}
        assert len(train_pids) == tiny_reid_cfg.train_ids and len(test_pids) == tiny_reid_cfg.test_ids
        assert not train_pids & test_pids
        assert all(
            i['fmnist_split'] == ('train' if i['part'] == 'train' else 'test') for i in idents.values()
        )
        seen = defaultdict(set)
        for subset, folder in SUBSET_DIRS.items():
            for name, pid, camid in list_reid_folder(osp.join(reid_root, domain, folder)):
                if pid in (-1, 0):
                    assert subset == 'gallery'
                    continue
                assert pid in (train_pids if subset == 'train' else test_pids), (subset, name)
                assert camid in idents[pid]['cameras']
                assert 0 <= camid < tiny_reid_cfg.num_cameras
                seen[pid].add(camid)
        for pid, ident in idents.items():
            assert seen[pid] == set(ident['cameras']) and len(seen[pid]) >= 2


def test_domains_use_disjoint_items(reid_root):
    items = {}
    for domain in ('source', 'target'):
        with open(osp.join(reid_root, domain, 'identities.json')) as f:
            items[domain] = {(i['fmnist_split'], i['fmnist_index']) for i in json.load(f)['identities']}
    assert not items['source'] & items['target']


def test_every_query_has_a_cross_camera_gallery_match(reid_root):
    for domain in ('source', 'target'):
        gallery = defaultdict(set)
        for _, pid, camid in list_reid_folder(osp.join(reid_root, domain, 'bounding_box_test')):
            gallery[pid].add(camid)
        queries = list_reid_folder(osp.join(reid_root, domain, 'query'))
        assert queries
        for _, pid, camid in queries:
            assert gallery[pid] - {camid}, f'query pid {pid} cam {camid} has no cross-camera match'


def test_market_dataset_train_relabels_contiguously(reid_root):
    ds = MarketReIDDataset(data_root=osp.join(reid_root, 'source'), subset='train')
    files = os.listdir(osp.join(reid_root, 'source', 'bounding_box_train'))
    assert len(ds) == len(files)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    pids = sorted({i['pid'] for i in infos})
    assert sorted({i['label'] for i in infos}) == list(range(len(pids)))
    for info in infos:
        assert info['label'] == pids.index(info['pid'])
        assert int(info['gt_label']) == info['label']
        assert (info['pid'], info['camid']) == parse_market_name(info['img_path'])
        assert osp.isfile(info['img_path'])
    assert ds.num_pids == len(pids)


def test_market_dataset_junk_and_distractor_rules(reid_root, tiny_reid_cfg):
    root = osp.join(reid_root, 'target')
    files = os.listdir(osp.join(root, 'bounding_box_test'))
    n_junk = sum(f.startswith('-1_') for f in files)
    n_distractor = sum(f.startswith('0000_') for f in files)
    assert n_junk == tiny_reid_cfg.num_junk and n_distractor == tiny_reid_cfg.num_distractors
    default = MarketReIDDataset(data_root=root, subset='gallery', test_mode=True)
    assert len(default) == len(files) - n_junk
    assert all(default.get_data_info(i)['pid'] != -1 for i in range(len(default)))
    no_distractors = MarketReIDDataset(data_root=root, subset='gallery', drop_distractors=True)
    assert len(no_distractors) == len(files) - n_junk - n_distractor
    keep_all = MarketReIDDataset(data_root=root, subset='gallery', drop_junk=False)
    assert len(keep_all) == len(files)
    info = default.get_data_info(0)
    assert info['label'] == info['pid'], 'query / gallery keep the original pids'
    assert info['subset'] == 'gallery'


def test_market_dataset_layout_errors(tmp_path):
    with pytest.raises(ReIDLayoutError, match='bounding_box_train') as exc:
        MarketReIDDataset(data_root=str(tmp_path / 'missing'), subset='train')
    assert 'missing' in str(exc.value)
    folder = tmp_path / 'bad' / 'query'
    folder.mkdir(parents=True)
    (folder / 'notes.txt').write_text('ignored')
    with pytest.raises(ReIDLayoutError, match='holds no images'):
        MarketReIDDataset(data_root=str(tmp_path / 'bad'), subset='query')
    (folder / 'person1.jpg').write_bytes(b'')
    with pytest.raises(ReIDLayoutError, match='person1.jpg'):
        MarketReIDDataset(data_root=str(tmp_path / 'bad'), subset='query')


def test_reid_build_is_deterministic(tmp_path, tiny_reid_cfg, fmnist_available):
    import dataclasses

    cfg = dataclasses.replace(tiny_reid_cfg, train_ids=4, test_ids=3, num_distractors=2, num_junk=1)
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    build_reid(a, seed=5, cfg=cfg)
    build_reid(b, seed=5, cfg=cfg)
    for domain in cfg.domains:
        for folder in list(SUBSET_DIRS.values()) + ['']:
            da, db = osp.join(a, domain, folder), osp.join(b, domain, folder)
            names = sorted(n for n in os.listdir(da) if osp.isfile(osp.join(da, n)))
            assert names == sorted(n for n in os.listdir(db) if osp.isfile(osp.join(db, n)))
            for n in names:
                assert filecmp.cmp(osp.join(da, n), osp.join(db, n), shallow=False), n
