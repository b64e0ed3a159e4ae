"""CropBank: label bank caps, statistics -> PR / mu, refresh, exact state round trip, atomic file."""

import os
import pickle

import mmcv
import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS
from mmengine.registry import init_default_scope

from mmssod.datasets.transforms.acrst_paste import read_bank_version
from mmssod.engine.hooks.cropbank_hook import CropBank, CropBankHook
from mmssod.models.acrst.functional import affr_distribution, pseudo_recall


@pytest.fixture
def labeled_infos(acrst_cfg):
    init_default_scope('mmdet')
    cfg = acrst_cfg.train_dataloader.dataset.datasets[0]
    dataset = DATASETS.build(dict(cfg, pipeline=[]))
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def bank_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if key in ('label_bank', 'pseudo_bank'):
            for ea, eb in zip(sa[key], sb[key]):
                assert len(ea) == len(eb)
                for x, y in zip(ea, eb):
                    assert np.array_equal(x['crop'], y['crop']) and x['label'] == y['label']
        else:
            np.testing.assert_equal(sa[key], sb[key])


def test_label_bank_caps_counts_and_crops(labeled_infos):
    bank = CropBank(10, label_cap=3, pseudo_cap=2, crop_max_size=32)
    bank.build_label_bank(labeled_infos)
    counts = np.zeros(10, np.int64)
    for info in labeled_infos:
        for inst in info['instances']:
            counts[inst['bbox_label']] += 1
    assert bank.num_labeled_images == len(labeled_infos)
    np.testing.assert_array_equal(bank.labeled_counts, counts)  # statistics use every instance
    assert (bank.sizes() == np.minimum(counts, 3)).all()  # crops are capped per class
    crops = [e['crop'] for k in range(10) for e in bank.label_bank[k]]
    assert all(c.dtype == np.uint8 and c.ndim == 3 and max(c.shape[:2]) <= 32 for c in crops)


def test_refresh_computes_pr_and_mu_from_the_window(labeled_infos):
    bank = CropBank(10, label_cap=2, pseudo_cap=2, crop_max_size=32, beta=0.6)
    bank.build_label_bank(labeled_infos)
    img = labeled_infos[0]['img_path']
    records = [
        {
            'img_path': img,
            'bboxes': np.array([[0, 0, 20, 20], [10, 10, 40, 40], [5, 5, 30, 30]], np.float32),
            'labels': np.array([0, 0, 3]),
            'scores': np.array([0.9, 0.05, 0.8]),
            'kept': np.array([True, False, True]),
        },
        {
            'img_path': img,
            'bboxes': np.zeros((0, 4), np.float32),
            'labels': np.zeros(0, np.int64),
            'scores': np.zeros(0),
            'kept': np.zeros(0, bool),
        },
    ]
    bank.add_teacher_records(records, conf_thr=0.1)
    conf = np.zeros(10)
    conf[0], conf[3] = 0.9, 0.8  # the 0.05 detection is below conf_thr
    np.testing.assert_allclose(bank.window_confidence, conf)
    assert bank.window_images == 2 and len(bank.candidates) == 2
    version = bank.version
    bank.refresh()
    expected_pr = pseudo_recall(
        torch.tensor(conf), 2, torch.from_numpy(bank.labeled_counts), len(labeled_infos)
    )
    np.testing.assert_allclose(bank.pr, expected_pr.numpy(), rtol=1e-6)
    np.testing.assert_allclose(bank.mu, affr_distribution(expected_pr, 0.6).numpy(), rtol=1e-5)
    assert [len(b) for b in bank.pseudo_bank][0] == 1 and len(bank.pseudo_bank[3]) == 1
    assert bank.pseudo_bank[0][0]['crop'].shape[:2] == (20, 20)
    assert bank.version == version + 1 and bank.window_images == 0 and bank.candidates == []


def test_state_dict_round_trip_is_exact_and_file_is_atomic(labeled_infos, tmp_path):
    bank = CropBank(10, label_cap=2, pseudo_cap=2, crop_max_size=32)
    bank.build_label_bank(labeled_infos)
    bank.add_teacher_records(
        [
            {
                'img_path': labeled_infos[1]['img_path'],
                'bboxes': np.array([[1, 1, 30, 30]], np.float32),
                'labels': np.array([5]),
                'scores': np.array([0.75]),
                'kept': np.array([True]),
            }
        ]
    )
    restored = CropBank(10)
    restored.load_state_dict(bank.state_dict())
    bank_equal(bank, restored)
    path = tmp_path / 'bank' / 'cropbank.pkl'
    bank.save(str(path))
    assert os.listdir(path.parent) == ['cropbank.pkl']  # no temporary file left behind
    assert read_bank_version(str(path)) == bank.version
    with open(path, 'rb') as f:
        f.seek(8)
        exported = pickle.load(f)
    assert exported['version'] == bank.version
    assert [len(c) for c in exported['crops']] == bank.sizes().tolist()
    with pytest.raises(ValueError, match='classes'):
        CropBank(3).load_state_dict(bank.state_dict())


def test_unwritable_bank_path_names_the_setting(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    with pytest.raises(OSError, match='CropBankHook.bank_file'):
        CropBank(2).save(str(blocker / 'cropbank.pkl'))


def test_bad_hook_settings():
    with pytest.raises(ValueError, match='refresh_interval'):
        CropBankHook(refresh_interval=0)
    with pytest.raises(ValueError, match='beta'):
        CropBankHook(beta=-0.1)
    with pytest.raises(ValueError, match='conf_thr'):
        CropBankHook(conf_thr=2)


def test_refresh_keeps_the_pseudo_cap_best_scoring_candidates(tmp_path):
    """``refresh`` keeps per class the ``pseudo_cap`` candidates first in (-score, img_path, bbox) order."""
    img_path = str(tmp_path / 'unlabeled.png')
    mmcv.imwrite(np.full((80, 80, 3), 127, np.uint8), img_path)
    bank = CropBank(5, label_cap=0, pseudo_cap=2, crop_max_size=64)
    # ten class-4 candidates; box i is (i + 10) px wide so a crop tells which candidate it came from
    scores = [0.50, 0.91, 0.70, 0.93, 0.60, 0.91, 0.80, 0.75, 0.65, 0.55]
    boxes = np.array([[i, 0, i + 10 + i, 20] for i in range(10)], np.float32)
    record = {
        'img_path': img_path,
        'bboxes': np.concatenate([boxes, [[0, 0, 30, 30], [0, 0, 12, 12]]]).astype(np.float32),
        'labels': np.array([4] * 10 + [4, 1]),
        'scores': np.array(scores + [0.99, 0.40]),
        'kept': np.array([True] * 10 + [False, True]),  # the 0.99 detection failed the two-stage filter
    }
    bank.add_teacher_records([record])
    assert sum(c['label'] == 4 for c in bank.candidates) == 4 * 2  # bounded while waiting
    bank.refresh()
    kept = bank.pseudo_bank[4]
    assert len(kept) == 2  # pseudo_cap
    # the best score 0.93 (box 3), then of the two 0.91 (boxes 1 and 5) the one with the smaller bbox
    assert [e['score'] for e in kept] == [0.93, 0.91]
    assert [e['crop'].shape[:2] for e in kept] == [(20, 13), (20, 11)]
    assert len(bank.pseudo_bank[1]) == 1 and bank.pseudo_bank[1][0]['score'] == 0.40  # other classes apart
    assert all(len(bank.pseudo_bank[k]) == 0 for k in (0, 2, 3))
