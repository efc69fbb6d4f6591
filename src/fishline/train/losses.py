"""Losses of the FISH classifier: NT-Xent and the joint contrastive + cross-entropy loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR) over N pairs of views: 2N anchors, each with one positive.

    For anchor i the positive is its other view; the other 2N - 2 views are negatives:
    ``l_i = -log exp(s_ip / t) / sum_{k != i} exp(s_ik / t)`` with cosine similarity s,
    averaged over all 2N anchors.
    """
    views = F.normalize(torch.cat([first, second]), dim=1)
    count = first.shape[0]
    logits = views @ views.T / temperature
    logits = logits.masked_fill(
        torch.eye(2 * count, dtype=torch.bool, device=views.device), float("-inf")
    )
    positives = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(views.device)
    return F.cross_entropy(logits, positives)


def joint_loss(
    projections: tuple[torch.Tensor, torch.Tensor],
    logits: tuple[torch.Tensor, torch.Tensor],
    labels: torch.Tensor,
    weight: float,
    smoothing: float,
    temperature: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``NT-Xent(z1, z2) + weight * CE``, CE (label-smoothed) averaged over both views.

    This is the weighting implemented: the contrastive term has weight 1 and the
    classification term ``weight`` (the paper's lambda = 0.5).
    """
    contrastive = nt_xent(*projections, temperature)
    classification = 0.5 * (
        F.cross_entropy(logits[0], labels, label_smoothing=smoothing)
        + F.cross_entropy(logits[1], labels, label_smoothing=smoothing)
    )
    total = contrastive + weight * classification
    return total, {
        "contrastive": float(contrastive.detach()),
        "cross_entropy": float(classification.detach()),
    }
