"""The FISH classifier: ResNet-18, a 128-d representation, projection and class heads."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fishline.errors import InputError
from fishline.nets.resnet import ResNet18


class FishNet(nn.Module):
    """ResNet-18 -> 128-d representation -> (64-d projection, class logits).

    Heads as in Bonath et al.: the projection head has two layers (128 -> 128 -> 64) for
    the contrastive loss; the classifier two fully connected layers (128 -> 128 -> C) with
    ReLU and dropout 0.25.
    """

    def __init__(self, classes: int, in_channels: int = 3, weights: str | None = None) -> None:
        super().__init__()
        backbone = ResNet18()
        if in_channels != 3:
            backbone.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        if weights:
            load_backbone_weights(backbone, weights)
        backbone.fc = nn.Linear(512, 128)
        self.backbone = backbone
        self.projection = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64))
        self.classifier = nn.Sequential(
            nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, classes)
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (representation, projection, logits) for a batch of images."""
        representation = self.backbone(images)
        return representation, self.projection(representation), self.classifier(representation)


def load_backbone_weights(backbone: nn.Module, path: str) -> None:
    """Load a local ResNet-18 state dict (e.g. ImageNet weights); never downloads."""
    file = Path(path)
    if not file.is_file():
        raise InputError(str(file), "backbone weights file not found (nothing is downloaded)")
    state = torch.load(file, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("fc.")]:
        raise InputError(str(file), "not a ResNet-18 state dict (keys do not match)")
