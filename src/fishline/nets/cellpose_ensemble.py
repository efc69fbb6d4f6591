"""Several Cellpose networks run as one: their flows and cell probabilities are averaged.

Networks trained from their own random start on their own painted spreads err in different
places on real ones, so their average is steadier than any one of them; narrow members
(channel widths 16-128 instead of Cellpose's 32-256) make four of them cost about as
much as one default network. Cellpose's inference (``cellpose.core.run_net``) calls the
network as it calls its own ``CPnet`` and keeps a 256-long style vector per tile, so this
module reads like one to it.
"""

from __future__ import annotations

import torch
from torch import nn

# Cellpose's default channel widths and the style length its inference allocates per tile.
DEFAULT_WIDTH = (32, 64, 128, 256)
STYLE_LENGTH = 256


def cellpose_net(width: tuple[int, ...] | list[int], diameter: float) -> nn.Module:
    """One Cellpose 3.1 network (2 input channels, flows + probability out) of the given
    channel widths, working at object size ``diameter`` (px)."""
    from cellpose.resnet_torch import CPnet

    return CPnet([2, *width], 3, sz=3, mkldnn=False, diam_mean=diameter)


class CellposeEnsemble(nn.Module):
    """``members`` Cellpose networks of one width whose outputs are averaged."""

    def __init__(self, members: int, width: tuple[int, ...] | list[int], diameter: float) -> None:
        super().__init__()
        self.members = nn.ModuleList(cellpose_net(width, diameter) for _ in range(members))
        # What Cellpose's inference reads from its network.
        self.nout = 3
        self.mkldnn = False

    @property
    def device(self) -> torch.device:
        """Where the members' weights are."""
        return next(self.parameters()).device

    @property
    def diam_mean(self) -> nn.Parameter:
        """The object size the members work at (the first member's; all share it)."""
        return self.members[0].diam_mean

    @property
    def diam_labels(self) -> nn.Parameter:
        """The training objects' size (the first member's; all train on the same images)."""
        return self.members[0].diam_labels

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean flows and probability logits (N, 3, H, W) and mean style (N, 256; narrow
        members' styles zero-padded to the length Cellpose allocates)."""
        outputs, styles = [], []
        for member in self.members:
            output, style = member(image)[:2]
            outputs.append(output)
            styles.append(nn.functional.pad(style, (0, STYLE_LENGTH - style.shape[1])))
        return torch.stack(outputs).mean(0), torch.stack(styles).mean(0)
