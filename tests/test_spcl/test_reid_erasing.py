"""ReIDRandomErasing: the official re-ID patch draw (uniform aspect ratio, up to 100 draws that must fit)."""

import math

import numpy as np
import pytest
from mmdet.registry import TRANSFORMS

import mmssod  # noqa: F401  (registers the transform)
from mmssod.datasets.transforms.reid_erasing import sample_erasing_patch


def _draws(sampling, n=20000, size=1000):
    """Accepted patches on a large image with small areas, so that every first draw fits."""
    rng = np.random.RandomState(0)
    patches = [
        sample_erasing_patch(size, size, (0.01, 0.02), (0.3, 1 / 0.3), sampling, 1, rng) for _ in range(n)
    ]
    assert all(p is not None for p in patches)
    return np.array([(h, w) for _, _, h, w in patches], dtype=np.float64)


def test_uniform_aspect_ratio_as_the_official_code():
    """Aspect h / w ~ U(0.3, 3.33): mean (0.3 + 3.33) / 2 = 1.82, P(h > w) = (3.33 - 1) / 3.03 = 0.77."""
    hw = _draws('uniform')
    aspect = hw[:, 0] / hw[:, 1]
    assert aspect.mean() == pytest.approx((0.3 + 1 / 0.3) / 2, abs=0.02)
    assert (aspect > 1).mean() == pytest.approx((1 / 0.3 - 1) / (1 / 0.3 - 0.3), abs=0.01)


def test_log_uniform_aspect_ratio_as_mmpretrain():
    """log(h / w) ~ U(log 0.3, log 3.33): mean (3.33 - 0.3) / log(11.1) = 1.26, P(h > w) = 0.5."""
    hw = _draws('log-uniform')
    aspect = hw[:, 0] / hw[:, 1]
    assert aspect.mean() == pytest.approx((1 / 0.3 - 0.3) / math.log(1 / 0.09), abs=0.02)
    assert (aspect > 1).mean() == pytest.approx(0.5, abs=0.01)


def test_patches_fit_strictly_inside_and_corners_reach_the_far_edge():
    rng = np.random.RandomState(1)
    tops, lefts = [], []
    for _ in range(3000):
        patch = sample_erasing_patch(32, 16, rng=rng)
        if patch is None:
            continue
        top, left, h, w = patch
        assert 0 < h < 32 and 0 < w < 16 and top + h <= 32 and left + w <= 16
        tops.append(top + h == 32)
        lefts.append(left == 0)
    assert any(tops) and any(lefts)  # the corner is uniform over [0, H - h] inclusive


class _CountingRng(np.random.RandomState):
    calls = 0

    def uniform(self, *args, **kwargs):
        type(self).calls += 1
        return super().uniform(*args, **kwargs)


def test_gives_up_after_max_attempts_and_leaves_the_image():
    """A 1-pixel-high image: every patch is at least 1 px high, so no draw fits."""
    rng = _CountingRng(0)
    assert sample_erasing_patch(1, 100, max_attempts=7, rng=rng) is None
    assert _CountingRng.calls == 2 * 7  # one area and one aspect draw per attempt
    erase = TRANSFORMS.build(dict(type='ReIDRandomErasing', erase_prob=1.0, mode='const', fill_color=255))
    img = np.zeros((1, 100, 3), np.uint8)
    assert not erase(dict(img=img.copy()))['img'].any()


def test_transform_fills_one_rectangle_with_the_fill_colour():
    np.random.seed(2)
    erase = TRANSFORMS.build(
        dict(type='ReIDRandomErasing', erase_prob=1.0, mode='const', fill_color=(1, 2, 3))
    )
    assert erase.aspect_range == (0.3, 1 / 0.3) and erase.max_attempts == 100  # the official defaults
    out = erase(dict(img=np.zeros((256, 128, 3), np.uint8)))['img']
    rows, cols = np.nonzero(out.any(axis=2))
    assert rows.size > 0
    box = out[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert (box == np.array([1, 2, 3], np.uint8)).all()  # one filled rectangle
    area = box.shape[0] * box.shape[1] / (256 * 128)
    assert 0.02 * 0.9 <= area <= 0.4 * 1.1
    never = TRANSFORMS.build(dict(type='ReIDRandomErasing', erase_prob=0.0))
    assert not never(dict(img=np.zeros((8, 8, 3), np.uint8)))['img'].any()


@pytest.mark.parametrize(
    'bad', [dict(aspect_sampling='normal'), dict(max_attempts=0), dict(max_attempts=1.5)]
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        TRANSFORMS.build(dict(type='ReIDRandomErasing', **bad))
