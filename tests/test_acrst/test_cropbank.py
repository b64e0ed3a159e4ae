"""CropBank: the whole labeled set as records, statistics -> PR / mu (AAAI and v1), refresh, exact state
round trip, atomic file, flat memory, settings from the config (not the checkpoint)."""

import os
import pickle

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS
from mmengine.registry import init_default_scope

from mmssod.datasets.cropbank import (
    CropBank,
    RecordTable,
    affr_distribution,
    pseudo_recall_v1,
    rank_bank_file,
    read_bank_version,
)
from mmssod.engine.hooks import CropBankHook

from .bank_digest_hook import canonical


@pytest.fixture
def labeled_infos(acrst_cfg):
    init_default_scope('mmdet')
    cfg = acrst_cfg.train_dataloader.dataset.datasets[0]
    dataset = DATASETS.build(dict(cfg, pipeline=[]))
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def record(img_path, bboxes, labels, scores, kept):
    return {
        'img_path': img_path,
        'bboxes': np.asarray(bboxes, np.float32).reshape(-1, 4),
        'labels': np.asarray(labels, np.int64),
        'scores': np.asarray(scores, np.float64),
        'kept': np.asarray(kept, bool),
    }


def test_label_bank_holds_every_labeled_instance_as_records(labeled_infos):
    bank = CropBank(10)
    bank.build_label_bank(labeled_infos)
    counts = np.zeros(10, np.int64)
    boxes = []
    for info in labeled_infos:
        for inst in info['instances']:
            counts[inst['bbox_label']] += 1
            boxes.append((info['img_path'], tuple(np.float32(inst['bbox'])), inst['bbox_label']))
    assert bank.num_labeled_images == len(labeled_infos)
    np.testing.assert_array_equal(bank.labeled_counts, counts)
    np.testing.assert_array_equal(bank.sizes(), counts)  # the whole labeled set, no per-class cap
    table = bank.label_bank
    stored = [(table.paths[r['image']], tuple(r['bbox']), int(r['label'])) for r in table.records]
    assert sorted(stored) == sorted(boxes)  # each record is (image, box, class) of a ground-truth box
    assert (table.records['score'] == 1).all()
    capped = CropBank(10, label_cap=2)
    capped.build_label_bank(labeled_infos)
    assert (capped.sizes() == np.minimum(counts, 2)).all()


def test_bank_memory_is_flat_records_not_pixels():
    # 100k instances over 20k images: a few MB of records, independent of the image or box sizes
    bank = CropBank(80)
    infos = (
        {
            'img_path': f'/data/img_{i:06d}.jpg',
            'instances': [
                {'bbox': [0, 0, 640, 480], 'bbox_label': (i + j) % 80, 'ignore_flag': 0} for j in range(5)
            ],
        }
        for i in range(20000)
    )
    bank.build_label_bank(infos)
    assert bank.sizes().sum() == 100000
    assert len(pickle.dumps(bank.export())) < 8 * 2**20


def test_refresh_aaai_pr_is_the_confidence_sum(labeled_infos):
    bank = CropBank(10, pseudo_cap=2, beta=0.6)
    bank.build_label_bank(labeled_infos)
    img = labeled_infos[0]['img_path']
    records = [
        record(
            img, [[0, 0, 20, 20], [10, 10, 40, 40], [5, 5, 30, 30]], [0, 0, 3], [0.9, 0.05, 0.8], [1, 0, 1]
        ),
        record(img, np.zeros((0, 4)), [], [], []),
        record(img, [[1, 1, 9, 9]], [3], [0.4], [0]),  # counts for PR (>= 0.1) though filtered out
    ]
    bank.add_teacher_records(records, conf_thr=0.1)
    conf = np.zeros(10)
    conf[0], conf[3] = 0.9, 0.8 + 0.4  # the 0.05 detection is below conf_thr
    np.testing.assert_allclose(bank.pending_confidence, conf)
    assert bank.window_images == 0 and bank.pending_images == 3  # this process's part, until a sync
    bank.sync()
    np.testing.assert_allclose(bank.window_confidence, conf)
    assert bank.window_images == 3 and len(bank.candidates) == 2 and bank.pending_images == 0
    version = bank.version
    bank.refresh()
    np.testing.assert_allclose(bank.pr, conf, rtol=1e-6)  # no division by the labeled counts, no clip
    np.testing.assert_allclose(bank.mu, affr_distribution(torch.tensor(conf), 0.6).numpy(), rtol=1e-5)
    assert bank.mu[3] < bank.mu[0] < bank.mu[1]  # PR 1.2 > 0.9 > 0 (never detected: the most attention)
    labels = bank.pseudo_bank.records['label'].tolist()
    assert sorted(labels) == [0, 3]
    assert bank.version == version + 1 and bank.window_images == 0 and len(bank.candidates) == 0
    # a window without images keeps PR and mu
    mu = bank.mu.copy()
    bank.refresh()
    np.testing.assert_array_equal(bank.mu, mu)


def test_refresh_v1_pr_uses_the_labeled_prior(labeled_infos):
    bank = CropBank(10, pr_form='v1')
    bank.build_label_bank(labeled_infos)
    img = labeled_infos[0]['img_path']
    bank.add_teacher_records([record(img, [[0, 0, 20, 20], [2, 2, 30, 30]], [1, 4], [0.9, 0.8], [1, 1])] * 4)
    counts = np.zeros(10)
    counts[1] = counts[4] = 4
    bank.refresh()
    expected = pseudo_recall_v1(
        torch.tensor(counts), 4, torch.from_numpy(bank.labeled_counts), len(labeled_infos)
    ).numpy()
    np.testing.assert_allclose(bank.pr, expected, rtol=1e-6, equal_nan=True)
    with pytest.raises(ValueError, match='pr_form'):
        CropBank(10, pr_form='v2')


def test_state_dict_round_trip_is_exact_and_file_is_atomic(labeled_infos, tmp_path):
    bank = CropBank(10, pseudo_cap=2)
    bank.build_label_bank(labeled_infos)
    bank.add_teacher_records([record(labeled_infos[1]['img_path'], [[1, 1, 30, 30]], [5], [0.75], [1])])
    # additions not synced when the checkpoint was saved join the window of the loading bank
    unsynced = CropBank(10, pseudo_cap=2)
    unsynced.load_state_dict(bank.state_dict())
    bank.sync()
    assert canonical(unsynced.state_dict()) == canonical(bank.state_dict())
    bank.add_teacher_records([record(labeled_infos[2]['img_path'], [[2, 2, 30, 30]], [4], [0.8], [1])])
    bank.sync()
    restored = CropBank(10, pseudo_cap=2)
    restored.load_state_dict(bank.state_dict())
    assert canonical(restored.state_dict()) == canonical(bank.state_dict())
    # checkpoint state is builtin types and tensors only: torch.load(weights_only=True) accepts it
    torch.save({'cropbank': bank.state_dict()}, tmp_path / 'ckpt.pth')
    loaded = torch.load(tmp_path / 'ckpt.pth', weights_only=True)['cropbank']
    again = CropBank(10, pseudo_cap=2)
    again.load_state_dict(loaded)
    assert canonical(again.state_dict()) == canonical(bank.state_dict())
    np.testing.assert_array_equal(again.candidates.records, bank.candidates.records)
    assert len(bank.candidates) == 2
    np.testing.assert_array_equal(again.mu, bank.mu)
    # a state written as numpy arrays (record arrays) loads too
    legacy = dict(bank.state_dict(), **{k: getattr(bank, k).export() for k in CropBank.TABLES})
    legacy.update({k: getattr(bank, k) for k in CropBank.ARRAYS})
    old = CropBank(10, pseudo_cap=2)
    old.load_state_dict(legacy)
    assert canonical(old.state_dict()) == canonical(bank.state_dict())
    path = tmp_path / 'bank' / 'cropbank.pkl'
    bank.save(str(path))
    assert os.listdir(path.parent) == ['cropbank.pkl']  # no temporary file left behind
    assert read_bank_version(str(path)) == bank.version
    with open(path, 'rb') as f:
        f.seek(8)
        exported = pickle.load(f)
    assert exported['version'] == bank.version
    assert sum(len(b['records']) for b in exported['banks']) == bank.sizes().sum()
    with pytest.raises(ValueError, match='classes'):
        CropBank(3).load_state_dict(bank.state_dict())


def test_loaded_state_keeps_the_config_settings(labeled_infos):
    bank = CropBank(10, pseudo_cap=2, beta=0.6)
    bank.build_label_bank(labeled_infos)
    other = CropBank(10, pseudo_cap=5, beta=0.0, pr_form='v1')
    other.load_state_dict(bank.state_dict())
    assert (other.beta, other.pseudo_cap, other.pr_form) == (0.0, 5, 'v1')  # not overwritten
    np.testing.assert_array_equal(other.sizes(), bank.sizes())


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
    with pytest.raises(ValueError, match='pr_form'):
        CropBankHook(pr_form='AAAI2022')
    with pytest.raises(TypeError, match='crop_max_size'):
        CropBankHook(crop_max_size=128)  # removed: crops are cut at full size in the workers


def test_each_rank_has_its_own_bank_file():
    assert rank_bank_file('/w/cropbank/cropbank.pkl', 0, 1) == '/w/cropbank/cropbank.pkl'
    assert rank_bank_file('/w/cropbank/cropbank.pkl', 3, 4) == '/w/cropbank/cropbank.rank3.pkl'


def test_refresh_keeps_the_pseudo_cap_best_scoring_candidates():
    """Per class the ``pseudo_cap`` candidates first in (-score, img_path, bbox) order, however pruned."""
    bank = CropBank(5, pseudo_cap=2)
    scores = [0.50, 0.91, 0.70, 0.93, 0.60, 0.91, 0.80, 0.75, 0.65, 0.55]
    boxes = np.array([[i, 0, i + 10 + i, 20] for i in range(10)], np.float32)
    rec = record(
        'b.png',
        np.concatenate([boxes, [[0, 0, 30, 30], [0, 0, 12, 12]]]),
        [4] * 10 + [4, 1],
        scores + [0.99, 0.40],
        [True] * 10 + [False, True],  # the 0.99 detection failed the two-stage filter
    )
    # the same records in one batch, or one by one (pruned in between), give the same bank
    one = CropBank(5, pseudo_cap=2)
    one.add_teacher_records([rec])
    for i in range(12):
        sub = {k: (v[i : i + 1] if k != 'img_path' else v) for k, v in rec.items()}
        bank.add_teacher_records([sub, record('a.png', [[0, 0, 5, 5]], [2], [0.3], [True])])
    for b in (one, bank):
        b.refresh()
    kept = one.pseudo_bank.records[one.pseudo_bank.records['label'] == 4]
    assert kept['score'].tolist() == pytest.approx([0.93, 0.91])
    assert kept['bbox'][:, 0].tolist() == [3.0, 1.0]  # of the two 0.91 (boxes 1 and 5), the smaller bbox
    got = bank.pseudo_bank.records[bank.pseudo_bank.records['label'] == 4]
    np.testing.assert_array_equal(got[['bbox', 'label', 'score']], kept[['bbox', 'label', 'score']])
    assert [bank.pseudo_bank.paths[i] for i in got['image']] == ['b.png', 'b.png']
    assert (bank.pseudo_bank.records['label'] == 2).sum() == 2  # capped, from a.png
    assert set(bank.pseudo_bank.paths) == {'a.png', 'b.png'}


def test_extend_copies_the_table_only_when_its_buffer_doubles():
    """Adding an image costs the same at any table size: the held records are copied O(log N) times."""
    table = RecordTable()
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (8, 1))
    copies_per_stage = []
    for stage in range(4):  # 1k, 2k, 4k, 8k images (8k .. 64k records)
        copies, buffer = 0, table._buffer
        for i in range(1000 * 2**stage):
            table.extend(f'{stage}_{i}.png', boxes, np.arange(8) % 3, np.full(8, 0.9))
            if table._buffer is not buffer:
                copies, buffer = copies + 1, table._buffer
        copies_per_stage.append(copies)
    assert len(table) == 8 * 1000 * 15 and len(table.paths) == 15000
    # 8000 images added to a 56k-record table copy it at most once (the old table: once per image)
    assert copies_per_stage[-1] <= 1, copies_per_stage
    assert sum(copies_per_stage) <= np.ceil(np.log2(len(table) / 1024)) + 1, copies_per_stage
    assert table.records['label'].tolist()[:8] == [0, 1, 2, 0, 1, 2, 0, 1]
    # pruning keeps exactly the cap best per class, also after the buffer grew
    table.records['score'][:] = np.linspace(0, 1, len(table), dtype=np.float32)
    table.top_per_class(3, 5)
    assert np.bincount(table.records['label']).tolist() == [5, 5, 5]
    assert table.records['score'].min() > 0.99
    empty = RecordTable()
    empty.extend('a.png', boxes, np.zeros(8), np.ones(8))
    empty.top_per_class(3, 0)
    assert len(empty) == 0 and empty.paths == []


def test_pr_floor_option_reaches_mu():
    records = [record('a.png', [[0, 0, 9, 9], [0, 0, 8, 8]], [1, 2], [0.9, 0.3], [1, 1])]
    for floor, best_is_zero in ((0.0, True), (0.1, False)):
        bank = CropBank(3, pr_floor=floor)
        bank.add_teacher_records(records)
        bank.refresh()  # PR = [0, 0.9, 0.3]: class 0 never detected
        assert (bank.mu[1] == 0) == best_is_zero
        assert bank.mu[0] > bank.mu[2] > bank.mu[1]
    assert CropBankHook(pr_floor=0.1).bank_kwargs['pr_floor'] == 0.1
    with pytest.raises(ValueError, match='pr_floor'):
        CropBankHook(pr_floor=-1)


def random_records(rng, n_images, prefix):
    out = []
    for i in range(n_images):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 50, (n, 2))
        out.append(
            record(
                f'{prefix}_{i}.png',
                np.concatenate([xy, xy + rng.uniform(3, 40, (n, 2))], 1),
                rng.integers(0, 4, n),
                rng.uniform(0, 1, n).round(2),  # rounded: ties in score, broken by path and box
                rng.uniform(0, 1, n) > 0.3,
            )
        )
    return out


def test_ranks_that_sync_at_refresh_hold_the_bank_of_one_process_seeing_everything():
    rng = np.random.default_rng(0)
    ranks = [CropBank(4, pseudo_cap=3) for _ in range(2)]
    single = CropBank(4, pseudo_cap=3)
    for _ in range(5):  # iterations: each rank sees its own images, nothing is exchanged
        parts = [random_records(rng, 4, f'r{r}_{rng.integers(1e9)}') for r in range(2)]
        for bank, part in zip(ranks, parts):
            bank.add_teacher_records(part)
        single.add_teacher_records(parts[0] + parts[1])
    exports = [bank.pending_export() for bank in ranks]
    for bank in ranks:
        bank.refresh(gather=lambda part: exports)  # what all_gather_object returns on every rank
    single.refresh()
    assert canonical(ranks[0].state_dict()) == canonical(ranks[1].state_dict())
    np.testing.assert_array_equal(ranks[0].pseudo_bank.records, single.pseudo_bank.records)
    assert ranks[0].pseudo_bank.paths == single.pseudo_bank.paths
    np.testing.assert_allclose(ranks[0].pr, single.pr)
    np.testing.assert_allclose(ranks[0].mu, single.mu)


def test_hook_exchanges_records_only_at_refresh_and_before_checkpoints(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from mmengine.hooks import CheckpointHook

    from mmssod.engine.hooks import cropbank_hook

    gathers = []

    def fake_gather(part):
        gathers.append(runner.iter + 1)
        return [part, {**part, 'candidates': {'paths': [], 'records': part['candidates']['records'][:0]}}]

    monkeypatch.setattr(cropbank_hook, 'get_world_size', lambda: 2)
    monkeypatch.setattr(cropbank_hook, 'all_gather_object', fake_gather)
    rng = np.random.default_rng(1)
    model = SimpleNamespace(pop_cropbank_records=lambda: random_records(rng, 2, f'i{rng.integers(1e9)}'))
    hook = CropBankHook(bank_file=str(tmp_path / 'cropbank.pkl'), refresh_interval=10)
    hook._model = lambda runner: model
    hook.bank = CropBank(4)
    runner = SimpleNamespace(
        iter=0,
        hooks=[hook, CheckpointHook(interval=4, by_epoch=False, save_last=False)],
        message_hub=SimpleNamespace(update_info=lambda *args: None),
    )
    for it in range(20):
        runner.iter = it
        hook.after_train_iter(runner, it)
    assert gathers == [4, 8, 10, 12, 16, 20]  # checkpoints every 4, refreshes every 10: no other exchange
    assert hook.bank.version == 2 and hook.bank.pending_images == 0
