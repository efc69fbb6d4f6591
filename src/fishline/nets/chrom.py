"""The chromosome classifier: a plain ResNet-18 (normal vs aberration) whose 512-d
penultimate activations are the features of the UMAP filter."""

from __future__ import annotations

import torch
from torch import nn

from fishline.nets.resnet import ResNet18


class ChromNet(nn.Module):
    """ResNet-18 (random init, torchvision's layout) with ``classes`` outputs."""

    def __init__(self, classes: int = 2, in_channels: int = 3) -> None:
        super().__init__()
        net = ResNet18(classes)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.net = net

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The 512-d penultimate layer (global average pool, before the final fc)."""
        net = self.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        return torch.flatten(net.avgpool(x), 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.net.fc(self.features(images))
