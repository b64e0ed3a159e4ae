"""Market-1501 protocol: mAP and CMC against hand-computed values; the registered metric end to end."""

import numpy as np
import pytest
import torch
from mmdet.structures import ReIDDataSample

from mmssod.evaluation.functional.market_reid import market_reid_eval, squared_euclidean
from mmssod.evaluation.metrics import MarketReIDMetric


def test_market_protocol_by_hand():
    # gallery: g0 pid1 cam0, g1 pid2 cam1, g2 pid1 cam1, g3 pid0 (distractor) cam1, g4 pid1 cam1, g5 junk
    g_pids = np.array([1, 2, 1, 0, 1, -1])
    g_cams = np.array([0, 1, 1, 1, 1, 0])
    q_pids = np.array([1, 2, 3])
    q_cams = np.array([0, 0, 0])
    dist = np.array(
        [
            # q0 (pid 1, cam 0): ranking g0 (same id+cam: removed), g5 (junk: removed), g1, g2, g3, g4
            [0.0, 2.0, 3.0, 4.0, 5.0, 1.0],
            # q1 (pid 2, cam 0): ranking g1 first -> AP 1
            [5.0, 0.5, 1.0, 2.0, 3.0, 4.0],
            # q2 (pid 3): no match in the gallery -> skipped
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        ]
    )
    out = market_reid_eval(dist, q_pids, g_pids, q_cams, g_cams, topk=(1, 2, 3))
    # q0 after filtering: [g1 (no), g2 (yes), g3 (no), g4 (yes)]
    # -> AP = (1/2 + 2/4) / 2 = 0.5, first hit at rank 2
    assert out['mAP'] == pytest.approx((0.5 + 1.0) / 2)
    assert out['top1'] == pytest.approx(0.5) and out['top2'] == pytest.approx(1.0)
    assert out['num_valid_queries'] == 2


def test_no_valid_query_is_an_error():
    with pytest.raises(ValueError, match='no query'):
        market_reid_eval(np.zeros((1, 1)), np.array([1]), np.array([1]), np.array([0]), np.array([0]))


def test_squared_euclidean():
    q, g = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0]])
    np.testing.assert_allclose(squared_euclidean(q, g), [[1.0], [1.0]])


def make_sample(feat, pid, camid, subset):
    ds = ReIDDataSample(metainfo=dict(pid=pid, camid=camid, subset=subset))
    ds.pred_feature = torch.tensor(feat, dtype=torch.float32)
    return ds.to_dict()


def test_registered_metric_end_to_end():
    metric = MarketReIDMetric(topk=(1,))
    samples = [
        make_sample([1.0, 0.0], 1, 0, 'query'),
        make_sample([0.9, 0.1], 1, 1, 'gallery'),
        make_sample([0.0, 1.0], 2, 1, 'gallery'),
        make_sample([0.0, 1.0], 2, 0, 'query'),
    ]
    metric.process({}, samples)
    res = metric.evaluate(4)
    assert res['reid/mAP'] == 100.0 and res['reid/top1'] == 100.0
    bad = MarketReIDMetric()
    with pytest.raises(KeyError, match='subset'):
        bad.process({}, [ReIDDataSample(metainfo=dict(pid=1, camid=0)).to_dict()])


def _random_protocol(q=300, g=3000, d=16, seed=0):
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(1, 60, q), rng.integers(-1, 60, g)  # includes junk and distractors
    q_cams, g_cams = rng.integers(0, 6, q), rng.integers(0, 6, g)
    query = rng.normal(size=(q, d)).astype(np.float32)
    gallery = rng.normal(size=(g, d)).astype(np.float32)
    gallery[::7] = query[rng.integers(0, q, len(gallery[::7]))]  # exact ties in the ranking too
    return query, gallery, q_pids, g_pids, q_cams, g_cams


def test_chunked_evaluation_is_identical_and_bounded_in_memory():
    import tracemalloc

    from mmssod.evaluation.functional.market_reid import market_reid_eval_features

    query, gallery, q_pids, g_pids, q_cams, g_cams = _random_protocol()
    whole = market_reid_eval(
        squared_euclidean(query, gallery), q_pids, g_pids, q_cams, g_cams, topk=(1, 5), chunk_bytes=1 << 40
    )
    for chunk_bytes in (1, 100_000, 1 << 20):  # 1 query, 1 query, 10 queries per chunk
        assert (
            market_reid_eval_features(query, gallery, q_pids, g_pids, q_cams, g_cams, (1, 5), chunk_bytes)
            == whole
        )
        dist = squared_euclidean(query, gallery)
        assert market_reid_eval(dist, q_pids, g_pids, q_cams, g_cams, (1, 5), chunk_bytes) == whole

    def peak(chunk_bytes):
        tracemalloc.start()
        market_reid_eval_features(query, gallery, q_pids, g_pids, q_cams, g_cams, (1, 5), chunk_bytes)
        out = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out

    pairs = len(query) * len(gallery)
    assert peak(1 << 40) > 20 * pairs  # unchunked: ~34 bytes per pair (30 MB here)
    assert peak(1 << 20) < 2 * 2**20 + 8 * gallery.size  # chunked: the chunk bound plus the float64 gallery


def test_metric_chunks_queries_with_the_same_result():
    query, gallery, q_pids, g_pids, q_cams, g_cams = _random_protocol(q=40, g=200, seed=1)
    res = []
    for chunk_bytes in (1, 1 << 30):
        metric = MarketReIDMetric(topk=(1, 5), chunk_bytes=chunk_bytes)
        samples = [make_sample(f, int(p), int(c), 'query') for f, p, c in zip(query, q_pids, q_cams)]
        samples += [make_sample(f, int(p), int(c), 'gallery') for f, p, c in zip(gallery, g_pids, g_cams)]
        metric.process({}, samples)
        res.append(metric.evaluate(len(samples)))
    assert res[0] == res[1]
