"""ResNet-18 (He et al. 2016) as torchvision builds it: the same modules, names, order and
initialisation, so torchvision state dicts load into it and the same seed gives the same
weights (the tests check both against torchvision).

Why not torchvision itself: importing torchvision imports every model, dataset and op it
has, torch._dynamo among them, 1.0-1.2 CPU-s per process on a 2-core EPYC without AMX
(2026-12-06). About twenty of the default workflow's jobs built a ResNet-18 and paid it;
this module is the whole of what they used.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv3x3(inputs: int, outputs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, 3, stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut: identity, or ``downsample``
    (a 1x1 projection) where the shape changes."""

    def __init__(
        self, inputs: int, outputs: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inputs, outputs, stride)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(outputs, outputs)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block output."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """ResNet-18 with ``classes`` outputs: 7x7 stem, max pool, four stages of two blocks
    (64, 128, 256, 512 channels), global average pool, fully connected layer."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._stage(64, 64, 1)
        self.layer2 = self._stage(64, 128, 2)
        self.layer3 = self._stage(128, 256, 2)
        self.layer4 = self._stage(256, 512, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    @staticmethod
    def _stage(inputs: int, outputs: int, stride: int) -> nn.Sequential:
        """Two blocks, the first changing the width and the stride. The shortcut is built
        before the block, as torchvision builds it, so a seed draws the same weights."""
        shortcut = None
        if stride != 1 or inputs != outputs:
            shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )
        return nn.Sequential(
            BasicBlock(inputs, outputs, stride, shortcut), BasicBlock(outputs, outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (or whatever ``fc`` is replaced by)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
