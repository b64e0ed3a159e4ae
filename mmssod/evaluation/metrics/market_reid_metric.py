"""Re-ID metric, Market-1501 protocol (mmdet's ReIDMetrics has no query/gallery split or camera filter)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric

from ..functional.market_reid import DEFAULT_CHUNK_BYTES, market_reid_eval_features


@METRICS.register_module()
class MarketReIDMetric(BaseMetric):
    """mAP and CMC top-1/5/10 of query vs gallery features (Market-1501 protocol).

    Each data sample must carry ``pred_feature`` and metainfo ``pid``, ``camid`` and ``subset``
    (``'query'`` / ``'gallery'``), e.g. the ``MarketReIDDataset`` query + gallery sets in one
    ``ConcatDataset`` with ``PackReIDInputs(meta_keys=('pid', 'camid', 'subset'))``.

    Args:
        topk (Sequence[int]): CMC ranks. Defaults to (1, 5, 10).
        chunk_bytes (int): Bound of the temporaries of one chunk of queries: the (Q, G) distance matrix is
            never held (MSMT17: 11,659 x 82,161 pairs), only a chunk of its rows. Defaults to 256 MiB.
        collect_device (str): How MMEngine gathers the ranks' results: ``'cpu'`` through a temporary folder
            every rank writes to, which must be shared when the ranks span several machines; ``'gpu'``
            through the process group (NCCL), for clusters without a shared folder. Defaults to 'cpu'.
        prefix (str, optional): Defaults to 'reid'.
    """

    default_prefix: Optional[str] = 'reid'

    def __init__(
        self,
        topk: Sequence[int] = (1, 5, 10),
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(topk)
        self.chunk_bytes = int(chunk_bytes)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep feature, pid, camid and subset of each sample."""
        for ds in data_samples:
            missing = [k for k in ('pred_feature', 'pid', 'camid', 'subset') if k not in ds]
            if missing:
                raise KeyError(
                    f'MarketReIDMetric needs {missing} in each data sample: pack them with '
                    "PackReIDInputs(meta_keys=('pid', 'camid', 'subset'))"
                )
            feat = ds['pred_feature']
            feat = feat.detach().float().cpu() if isinstance(feat, torch.Tensor) else torch.as_tensor(feat)
            self.results.append((feat.reshape(-1).numpy(), int(ds['pid']), int(ds['camid']), ds['subset']))

    @staticmethod
    def _stack(feats: list) -> np.ndarray:
        """(N, D) float64 array filled row by row (no intermediate float32 copy of all features)."""
        out = np.empty((len(feats), feats[0].size), dtype=np.float64)
        for i, f in enumerate(feats):
            out[i] = f
        return out

    def compute_metrics(self, results: list) -> dict:
        """mAP / top-k (in %) over all collected samples."""
        subsets = np.array([r[3] for r in results])
        q, g = subsets == 'query', subsets == 'gallery'
        if not q.any() or not g.any():
            raise ValueError(
                f'MarketReIDMetric needs query and gallery samples, got {int(q.sum())} query and '
                f'{int(g.sum())} gallery: evaluate on ConcatDataset([query set, gallery set])'
            )
        pids = np.array([r[1] for r in results])
        cams = np.array([r[2] for r in results])
        query, gallery = (self._stack([r[0] for r, m in zip(results, mask) if m]) for mask in (q, g))
        out = market_reid_eval_features(
            query, gallery, pids[q], pids[g], cams[q], cams[g], self.topk, self.chunk_bytes
        )
        return {k: (v if k == 'num_valid_queries' else round(100.0 * v, 2)) for k, v in out.items()}
