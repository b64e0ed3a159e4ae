"""ACRSTPaste: boxes inside the image and equal to the pasted pixels, occlusion rule, empty-bank behaviour."""

import mmcv
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes

from mmssod.datasets.cropbank import CROPBANK_ENV, RECORD_DTYPE, write_bank_file
from mmssod.datasets.transforms import ACRSTPaste


def write_bank(path, crops_per_class, mu=None, version=1):
    """A bank file whose records point at images that contain exactly the given crops (PNG, lossless).

    Each crop sits at (3, 5) inside its own source image with a 7-valued frame around it, so the record's box
    cuts out exactly the crop; the label bank gets the even crops, the pseudo bank the odd ones.
    """
    num_classes = len(crops_per_class)
    mu = np.full(num_classes, 1.0 / num_classes) if mu is None else np.asarray(mu, np.float64)
    banks = [{'paths': [], 'records': []}, {'paths': [], 'records': []}]
    for label, crops in enumerate(crops_per_class):
        for i, crop in enumerate(crops):
            h, w = crop.shape[:2]
            img = np.full((h + 10, w + 9, 3), 7, np.uint8)
            img[5 : 5 + h, 3 : 3 + w] = crop
            img_path = f'{path}.src_{version}_{label}_{i}.png'
            mmcv.imwrite(img, img_path)
            bank = banks[i % 2]
            bank['records'].append((len(bank['paths']), (3, 5, 3 + w, 5 + h), label, 1.0))
            bank['paths'].append(img_path)
    for bank in banks:
        bank['records'] = np.array(bank['records'], RECORD_DTYPE)
    with open(path, 'wb') as f:
        write_bank_file(f, {'version': version, 'num_classes': num_classes, 'mu': mu, 'banks': banks})


def patterned_crop(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def results(height=96, width=128, boxes=None, labels=None, hbox=True):
    boxes = np.zeros((0, 4), np.float32) if boxes is None else np.asarray(boxes, np.float32)
    labels = np.zeros(len(boxes), np.int64) if labels is None else np.asarray(labels, np.int64)
    return {
        'img': np.full((height, width, 3), 7, np.uint8),
        'gt_bboxes': HorizontalBoxes(boxes) if hbox else boxes,
        'gt_bboxes_labels': labels,
        'gt_ignore_flags': np.zeros(len(boxes), bool),
        'scale_factor': (1.0, 1.0),
    }


def exact_paste(bank_file, **kwargs):
    """A paste with no crop augmentation, so pasted pixels must equal the stored crop."""
    options = dict(
        bank_file=str(bank_file), num_paste=(1, 1), scale_range=(1.0, 1.0), flip_prob=0.0, color_jitter=0.0
    )
    options.update(kwargs)
    return ACRSTPaste(**options)


def test_pasted_boxes_inside_image_and_consistent_with_pixels(tmp_path):
    bank_file = tmp_path / 'bank.pkl'
    crops = [[patterned_crop(20, 30, 0)], [patterned_crop(40, 16, 1), patterned_crop(12, 12, 2)]]
    write_bank(bank_file, crops)
    transform = exact_paste(bank_file)
    np.random.seed(0)
    for _ in range(20):
        out = transform(results())
        boxes = out['gt_bboxes'].numpy()
        assert len(boxes) == 1 and out['gt_pasted_flags'].tolist() == [True]
        x1, y1, x2, y2 = boxes[0].astype(int)
        assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 96
        patch = out['img'][y1:y2, x1:x2]
        label = int(out['gt_bboxes_labels'][0])
        assert any(patch.shape == c.shape and np.array_equal(patch, c) for c in crops[label])
        outside = out['img'].copy()
        outside[y1:y2, x1:x2] = 7
        assert (outside == 7).all()  # nothing changed outside the pasted box
        np.testing.assert_array_equal(out['pasted_bboxes'], boxes)
        np.testing.assert_array_equal(out['pasted_labels'], out['gt_bboxes_labels'])


def test_augmented_pastes_stay_inside_even_when_larger_than_image(tmp_path):
    bank_file = tmp_path / 'bank.pkl'
    write_bank(bank_file, [[patterned_crop(120, 200, 3)], [patterned_crop(8, 8, 4)]])
    transform = ACRSTPaste(bank_file=str(bank_file), num_paste=(2, 4), scale_range=(0.5, 2.0))
    np.random.seed(1)
    for _ in range(10):
        out = transform(results(height=64, width=80))
        boxes = out['gt_bboxes'].numpy()
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= 80).all() and (boxes[:, 3] <= 64).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def test_occluded_ground_truth_is_removed_visible_kept(tmp_path):
    bank_file = tmp_path / 'bank.pkl'
    write_bank(bank_file, [[patterned_crop(96, 128, 5)]])  # a crop covering the whole image
    out = exact_paste(bank_file)(results(boxes=[[10, 10, 40, 40], [50, 20, 90, 60]], labels=[0, 0]))
    assert out['gt_pasted_flags'].tolist() == [True]  # both ground-truth boxes were fully occluded
    write_bank(bank_file, [[patterned_crop(5, 5, 6)]])
    out = exact_paste(bank_file)(results(boxes=[[0, 0, 128, 96]], labels=[0], hbox=False))
    assert out['gt_pasted_flags'].tolist() == [False, True]  # a 5x5 paste leaves the big box visible
    assert out['gt_bboxes'].shape == (2, 4) and isinstance(out['gt_bboxes'], np.ndarray)


@pytest.fixture(autouse=True)
def no_announced_bank(monkeypatch):
    """Each test starts without a bank announced by a CropBankHook of an earlier test."""
    monkeypatch.delenv(CROPBANK_ENV, raising=False)


def test_missing_or_unannounced_bank_is_an_error_empty_classes_no_paste(tmp_path):
    with pytest.raises(RuntimeError, match='CropBankHook.*custom_hooks.*ACRSTPaste.bank_file'):
        ACRSTPaste()(results())  # no bank announced, none set
    with pytest.raises(FileNotFoundError, match=r'missing\.pkl.*ACRSTPaste\.bank_file'):
        ACRSTPaste(bank_file=str(tmp_path / 'missing.pkl'))(results())
    bank_file = tmp_path / 'bank.pkl'
    write_bank(bank_file, [[], []])
    before = results(boxes=[[1, 2, 30, 40]], labels=[0])
    img = before['img'].copy()
    out = exact_paste(bank_file)(before)  # a bank whose classes are all empty: nothing to paste
    assert np.array_equal(out['img'], img) and out['gt_pasted_flags'].tolist() == [False]
    assert out['pasted_bboxes'].shape == (0, 4)


def test_explicit_bank_file_reads_the_rank_copy_the_hook_announces(tmp_path, monkeypatch):
    """In DDP the hook writes ``<stem>.rank<r><ext>``: a transform set to ``<stem><ext>`` reads that copy."""
    crops = [[patterned_crop(6, 6, 11)]]
    write_bank(tmp_path / 'cropbank.rank1.pkl', crops)
    monkeypatch.setenv(CROPBANK_ENV, str(tmp_path / 'cropbank.rank1.pkl'))
    out = exact_paste(tmp_path / 'cropbank.pkl')(results())
    assert out['gt_pasted_flags'].tolist() == [True]
    monkeypatch.setenv(CROPBANK_ENV, str(tmp_path / 'elsewhere' / 'cropbank.pkl'))
    with pytest.raises(ValueError, match='ACRSTPaste.bank_file=.*CropBankHook writes'):
        exact_paste(tmp_path / 'cropbank.pkl')(results())
    monkeypatch.setenv(CROPBANK_ENV, str(tmp_path / 'cropbank.rank0.pkl'))  # announced, not written
    with pytest.raises(FileNotFoundError, match=r'cropbank\.rank0\.pkl.*CropBankHook\.bank_file'):
        exact_paste(tmp_path / 'cropbank.pkl')(results())


def test_classes_follow_mu_and_bank_reloads_on_change(tmp_path, monkeypatch):
    bank_file = tmp_path / 'bank.pkl'
    crops = [[patterned_crop(6, 6, 7)], [patterned_crop(6, 6, 8)], []]
    write_bank(bank_file, crops, mu=[0.0, 1.0, 0.0])
    monkeypatch.setenv(CROPBANK_ENV, str(bank_file))
    transform = ACRSTPaste(num_paste=(1, 1))  # finds the bank through the environment
    np.random.seed(2)
    assert {int(transform(results())['gt_bboxes_labels'][0]) for _ in range(10)} == {1}
    write_bank(bank_file, crops, mu=[1.0, 0.0, 0.0], version=2)
    assert {int(transform(results())['gt_bboxes_labels'][0]) for _ in range(10)} == {0}


def test_large_instances_are_pasted_at_full_size(tmp_path):
    """No shrinking to 128 px: a 200 x 150 instance on a 400 x 300 image is pasted 200 x 150 (scale 1)."""
    bank_file = tmp_path / 'bank.pkl'
    big = patterned_crop(150, 200, 9)
    write_bank(bank_file, [[big]])
    out = exact_paste(bank_file)(results(height=300, width=400))
    x1, y1, x2, y2 = out['gt_bboxes'].numpy()[0].astype(int)
    assert (x2 - x1, y2 - y1) == (200, 150)
    assert np.array_equal(out['img'][y1:y2, x1:x2], big)
    # the image's own resize factor scales the instance from its source image's pixels
    half = exact_paste(bank_file)(dict(results(height=300, width=400), scale_factor=(0.5, 0.5)))
    x1, y1, x2, y2 = half['gt_bboxes'].numpy()[0].astype(int)
    assert (x2 - x1, y2 - y1) == (100, 75)


def test_unreadable_source_image_is_named(tmp_path):
    bank_file = tmp_path / 'bank.pkl'
    write_bank(bank_file, [[patterned_crop(6, 6, 1)]])
    for png in tmp_path.glob('bank.pkl.src_*'):
        png.unlink()
    with pytest.raises(FileNotFoundError, match='CropBank image'):
        exact_paste(bank_file)(results())


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='num_paste'):
        ACRSTPaste(num_paste=(3, 1))
    with pytest.raises(ValueError, match='scale_range'):
        ACRSTPaste(scale_range=(0, 1))
    with pytest.raises(ValueError, match='flip_prob'):
        ACRSTPaste(flip_prob=2)


def test_student_pipeline_must_pass_the_pasted_meta_keys(acrst_cfg):
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    from mmssod.datasets.transforms.acrst_paste import check_pasted_meta_keys

    init_default_scope('mmdet')
    unlabeled = acrst_cfg.train_dataloader.dataset.datasets[1]
    check_pasted_meta_keys(Compose(unlabeled.pipeline), 'unlabeled')  # the demo config passes them on
    student = unlabeled.pipeline[-1]['unsup_student']
    student[-1]['meta_keys'] = tuple(k for k in student[-1]['meta_keys'] if k != 'pasted_labels')
    with pytest.raises(ValueError, match=r"unlabeled branch 'unsup_student'.*PackDetInputs.*pasted_labels"):
        check_pasted_meta_keys(Compose(unlabeled.pipeline), 'unlabeled')
    no_paste = [t for t in student if t['type'] != 'ACRSTPaste']
    check_pasted_meta_keys(Compose(no_paste), 'unlabeled')  # nothing pasted: nothing to pass on
