"""SpCLClusterHook over epochs: the independence threshold is computed at epoch 0, then kept fixed.

The hook's real ``before_train_epoch`` runs on a real hybrid memory (4 source centroids + 64 target
instances) and a real PseudoIdentitySampler; the runner is a minimal stand-in (model, sampler, logger,
message hub, epoch), since the tiny smoke run clusters its 100 images into one cluster and its threshold is
0 at every epoch, which cannot tell a fixed threshold from a recomputed one.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub, MMLogger

from mmssod.datasets.reid_uda import PseudoIdentitySampler
from mmssod.engine.hooks.spcl_cluster_hook import SpCLClusterHook
from mmssod.models.reid.clustering import self_paced_clustering
from mmssod.models.reid.hybrid_memory import HybridMemory
from mmssod.models.reid.jaccard import jaccard_distance, sparse_to_scipy

NUM_SOURCE, DIM = 4, 16
K1, K2 = 10, 3  # the 64 target images: 8 identities x 8 images


def identity_features(seed, n_per=8, centers=8, noise=0.8):
    """L2-normalised features of ``centers`` noisy identities (fixed seed: the same features every run)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(centers, DIM, generator=g)
    return F.normalize(c.repeat_interleave(n_per, 0) + noise * torch.randn(centers * n_per, DIM, generator=g))


EPOCH0, EPOCH1 = identity_features(6), identity_features(14)  # target features at epochs 0 and 1


def clustering(feats, threshold=None):
    dist = sparse_to_scipy(jaccard_distance(feats, K1, K2, max_distance=0.62))
    return self_paced_clustering(dist, 0.6, 0.02, 4, threshold)


def make_runner(name):
    model = torch.nn.Module()
    model.memory = HybridMemory(num_features=DIM)
    source = torch.randn(NUM_SOURCE, DIM, generator=torch.Generator().manual_seed(0))
    model.memory.init_memory(source, EPOCH0)
    sampler = PseudoIdentitySampler(list(range(len(EPOCH0))), batch_size=16, iters_per_epoch=2, seed=0)
    return SimpleNamespace(
        model=model,
        train_dataloader=SimpleNamespace(sampler=sampler, dataset=None),
        logger=MMLogger.get_instance(name),
        message_hub=MessageHub.get_instance(name),
        epoch=0,
    )


def test_threshold_from_epoch_0_is_reused_at_later_epochs_not_recomputed():
    # the two feature sets differ in exactly the way that matters: their own thresholds differ, and the
    # epoch-1 labels under the epoch-0 threshold differ from the ones a recomputed threshold would give
    fresh0, thr0, _ = clustering(EPOCH0)
    fresh1, thr1, _ = clustering(EPOCH1)
    assert thr0 is not None and thr1 is not None and thr0 != pytest.approx(thr1)
    fixed1, thr_fixed, _ = clustering(EPOCH1, thr0)
    assert thr_fixed == thr0 and not np.array_equal(fixed1, fresh1)

    hook = SpCLClusterHook(pipeline=[], k1=K1, k2=K2)
    runner = make_runner('spcl_hook_threshold')
    memory = runner.model.memory
    source_labels = memory.labels[:NUM_SOURCE].clone()
    assert hook.indep_threshold is None

    hook.before_train_epoch(runner)  # epoch 0: threshold computed from these clusters
    assert hook.indep_threshold == thr0
    assert runner.message_hub.get_scalar('train/spcl_indep_threshold').current() == thr0
    np.testing.assert_array_equal(memory.labels[NUM_SOURCE:].numpy() - NUM_SOURCE, fresh0)
    np.testing.assert_array_equal(runner.train_dataloader.sampler.pseudo_labels, fresh0)

    memory.features[NUM_SOURCE:] = EPOCH1  # the encoder moved on (momentum updates during the epoch)
    runner.epoch = 1
    hook.before_train_epoch(runner)  # epoch 1: same threshold, new clusters
    assert hook.indep_threshold == thr0
    assert runner.message_hub.get_scalar('train/spcl_indep_threshold').current() == thr0
    np.testing.assert_array_equal(memory.labels[NUM_SOURCE:].numpy() - NUM_SOURCE, fixed1)
    np.testing.assert_array_equal(runner.train_dataloader.sampler.pseudo_labels, fixed1)
    assert torch.equal(memory.labels[:NUM_SOURCE], source_labels)  # source classes are never clustered

    # a checkpoint carries the threshold: a new hook resumed from it keeps it at the next epoch
    ckpt = {}
    hook.before_save_checkpoint(runner, ckpt)
    assert ckpt['spcl'] == dict(indep_threshold=thr0)
    resumed = SpCLClusterHook(pipeline=[], k1=K1, k2=K2)
    resumed.after_load_checkpoint(runner, ckpt)
    runner.epoch = 2
    resumed.before_train_epoch(runner)
    assert resumed.indep_threshold == thr0
    np.testing.assert_array_equal(memory.labels[NUM_SOURCE:].numpy() - NUM_SOURCE, fixed1)


def test_label_quality_is_ari_and_nmi_against_the_true_identities():
    truth = np.repeat(np.arange(4), 5)

    class Target:
        def __len__(self):
            return truth.size

        def get_data_info(self, i):
            return dict(pid=int(truth[i]) + 100)

    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=Target()))
    perfect = SpCLClusterHook._label_quality(runner, truth + 7)  # same partition, other ids
    assert perfect == dict(
        ari=pytest.approx(1.0),
        nmi=pytest.approx(1.0),
        clustered=1.0,
        ari_clustered=pytest.approx(1.0),
        pairwise_precision=1.0,
    )
    merged = SpCLClusterHook._label_quality(runner, np.zeros(truth.size, dtype=np.int64))
    assert merged['ari'] == pytest.approx(0.0) and merged['nmi'] == pytest.approx(0.0)
    assert merged['pairwise_precision'] == pytest.approx(4 * 5 * 4 / (20 * 19))


def fresh_hook(refresh, fresh_feats, calls=None, **kwargs):
    """A hook whose eval-mode extraction returns ``fresh_feats`` (scaled: the hook must L2-normalise)."""
    hook = SpCLClusterHook(pipeline=[], k1=K1, k2=K2, refresh_memory=refresh, **kwargs)
    hook._fresh = None

    def extract(model, cfg):
        if calls is not None:
            calls.append(cfg)
        return 3.0 * fresh_feats, torch.zeros(len(fresh_feats), dtype=torch.long)

    hook._extract = extract
    hook._domain_cfgs = lambda runner: ['target']
    return hook


@pytest.mark.parametrize('refresh', [True, False])
def test_refresh_memory_overwrites_target_rows_with_fresh_eval_features_before_clustering(refresh):
    runner = make_runner(f'spcl_hook_refresh_{refresh}')
    runner.iter, runner.epoch = 10, 1
    memory = runner.model.memory
    memory.features[NUM_SOURCE:] = EPOCH1  # the momentum-averaged rows after an epoch
    source_rows = memory.features[:NUM_SOURCE].clone()
    calls = []
    hook = fresh_hook(refresh, EPOCH0, calls)
    hook.before_train_epoch(runner)
    expected_rows = EPOCH0 if refresh else EPOCH1
    torch.testing.assert_close(memory.features[NUM_SOURCE:], F.normalize(expected_rows))
    assert torch.equal(memory.features[:NUM_SOURCE], source_rows)  # source centroids untouched
    assert len(calls) == (1 if refresh else 0)
    # the clustering saw the rows the memory now holds
    np.testing.assert_array_equal(
        memory.labels[NUM_SOURCE:].numpy() - NUM_SOURCE, clustering(expected_rows)[0]
    )


def test_cluster_fresh_labels_from_fresh_eval_features_and_leaves_the_memory_rows():
    runner = make_runner('spcl_hook_cluster_fresh')
    runner.iter, runner.epoch = 10, 1
    memory = runner.model.memory
    memory.features[NUM_SOURCE:] = EPOCH1  # the momentum-averaged rows after an epoch
    rows = memory.features.clone()
    calls = []
    hook = fresh_hook(False, EPOCH0, calls, cluster_fresh=True)
    hook.before_train_epoch(runner)
    assert torch.equal(memory.features, rows)  # the loss's targets are untouched
    assert len(calls) == 1
    want = clustering(EPOCH0)[0]
    assert not np.array_equal(want, clustering(EPOCH1)[0])  # the two sources are distinguishable
    np.testing.assert_array_equal(memory.labels[NUM_SOURCE:].numpy() - NUM_SOURCE, want)


def test_refresh_skips_the_epoch_right_after_the_initial_extraction():
    runner = make_runner('spcl_hook_refresh_init')
    runner.iter = 0
    hook = fresh_hook(True, EPOCH1)
    hook._memory_just_extracted = True  # as before_train leaves it after filling the memory
    hook.before_train_epoch(runner)
    torch.testing.assert_close(runner.model.memory.features[NUM_SOURCE:], EPOCH0)
    runner.iter, runner.epoch = 5, 1
    hook.before_train_epoch(runner)  # the next epoch refreshes
    torch.testing.assert_close(runner.model.memory.features[NUM_SOURCE:], F.normalize(EPOCH1))


def test_set_target_features_checks_the_shape():
    memory = make_runner('spcl_hook_set_rows').model.memory
    with pytest.raises(ValueError, match='one per target row'):
        memory.set_target_features(EPOCH0[:-1])


def test_after_epoch_measures_memory_and_fresh_features_with_the_same_clustering():
    truth = np.repeat(np.arange(8), 8)

    class Target:
        def __len__(self):
            return truth.size

        def get_data_info(self, i):
            return dict(pid=int(truth[i]))

    runner = make_runner('spcl_hook_after_epoch')
    runner.train_dataloader.dataset = Target()
    runner.iter = 7
    memory = runner.model.memory
    hook = fresh_hook(False, EPOCH1, label_quality=True)
    hook.before_train_epoch(runner)  # epoch 0 sets the threshold
    thr = hook.indep_threshold
    rows_before = memory.features.clone()
    labels_before = memory.labels.clone()
    hook.after_train_epoch(runner)
    assert hook.indep_threshold == thr  # measuring never moves the threshold
    assert torch.equal(memory.features, rows_before) and torch.equal(memory.labels, labels_before)
    hub = runner.message_hub
    want_mem = SpCLClusterHook._label_quality(runner, clustering(EPOCH0, thr)[0])
    want_fresh = SpCLClusterHook._label_quality(runner, clustering(EPOCH1, thr)[0])
    assert hub.get_scalar('train/spcl_memory_ari').current() == pytest.approx(want_mem['ari'])
    assert hub.get_scalar('train/spcl_fresh_ari').current() == pytest.approx(want_fresh['ari'])
    assert hub.get_scalar('train/spcl_fresh_nmi').current() == pytest.approx(want_fresh['nmi'])
    assert want_mem['ari'] != pytest.approx(want_fresh['ari'])  # the two measurements are distinguishable
