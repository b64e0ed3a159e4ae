"""Reliability diagram (precision vs confidence per bin, with counts) saved as a PNG with matplotlib Agg."""

from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Optional

import numpy as np


def save_reliability_diagram(
    bins: Dict[str, np.ndarray], path: str, title: str = '', dece: float = None
) -> str:
    """Draw the bins of :func:`mmssod.evaluation.functional.calibration_bins` and save them.

    Bars: precision of each bin; outlined bars: the gap to the bin's mean confidence; the diagonal: perfect
    calibration; a second panel: the number of detections per bin.

    Args:
        bins (dict): ``edges``, ``counts``, ``confidence``, ``precision`` as returned by ``calibration_bins``.
        path (str): Output PNG path (folders are created).
        title (str): Figure title. Defaults to ''.
        dece (float, optional): D-ECE (x100) to print in the title. Defaults to None.

    Returns:
        str: ``path``.
    """
    import matplotlib

    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    edges, counts = bins['edges'], bins['counts']
    centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    prec = np.nan_to_num(bins['precision'], nan=0.0)
    conf = np.where(counts > 0, np.nan_to_num(bins['confidence'], nan=0.0), centers)

    fig, (ax, ax_n) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw=dict(height_ratios=[3, 1]), constrained_layout=True
    )
    ax.bar(centers, prec, width=width, color='tab:blue', edgecolor='black', label='precision')
    gap_bottom = np.minimum(prec, conf)
    ax.bar(
        centers,
        np.where(counts > 0, np.abs(conf - prec), 0),
        bottom=gap_bottom,
        width=width,
        color='tab:red',
        alpha=0.3,
        edgecolor='tab:red',
        hatch='//',
        label='gap to confidence',
    )
    ax.plot([0, 1], [0, 1], '--', color='gray', label='perfect calibration')
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel='precision')
    ax.legend(loc='upper left', fontsize=8)
    head = title or 'Reliability diagram'
    ax.set_title(
        f'{head}\nD-ECE = {dece:.2f}' if dece is not None and np.isfinite(dece) else head, fontsize=10
    )
    ax_n.bar(centers, counts, width=width, color='tab:gray', edgecolor='black')
    for x, n in zip(centers, counts):
        ax_n.text(x, n, str(int(n)), ha='center', va='bottom', fontsize=7)
    ax_n.set(xlabel='confidence', ylabel='# detections')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_reliability_comparison(
    named_bins: Dict[str, Dict[str, np.ndarray]],
    path: str,
    title: str = '',
    deces: Optional[Dict[str, float]] = None,
) -> str:
    """Reliability curves of several models in one figure (e.g. baseline vs Cal-DETR), saved as a PNG.

    Top: precision vs mean confidence of every non-empty bin, one line per model, and the diagonal of perfect
    calibration (points below it: over-confident, above it: under-confident). Bottom: the number of
    detections per bin, side-by-side bars.

    Args:
        named_bins (dict[str, dict]): Model name -> bins from ``calibration_bins`` (same edges for all).
        path (str): Output PNG path (folders are created).
        title (str): Figure title. Defaults to ''.
        deces (dict[str, float], optional): Model name -> D-ECE (x100) for the legend. Defaults to None.

    Returns:
        str: ``path``.
    """
    import matplotlib

    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    if not named_bins:
        raise ValueError('save_reliability_comparison needs the bins of at least one model')
    fig, (ax, ax_n) = plt.subplots(
        2, 1, figsize=(6, 7), sharex=True, gridspec_kw=dict(height_ratios=[3, 1]), constrained_layout=True
    )
    ax.plot([0, 1], [0, 1], '--', color='gray', label='perfect calibration')
    edges = next(iter(named_bins.values()))['edges']
    bar_w = np.diff(edges) / (len(named_bins) + 1)
    for k, (name, bins) in enumerate(named_bins.items()):
        full = bins['counts'] > 0
        label = name
        if deces and name in deces and np.isfinite(deces[name]):
            label = f'{name} (D-ECE {deces[name]:.2f})'
        ax.plot(bins['confidence'][full], bins['precision'][full], 'o-', label=label)
        ax_n.bar(edges[:-1] + (k + 0.5) * bar_w, bins['counts'], width=bar_w, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel='precision')
    ax.legend(loc='upper left', fontsize=8)
    ax.set_title(title or 'Reliability diagram', fontsize=10)
    ax_n.set(xlabel='confidence', ylabel='# detections')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
