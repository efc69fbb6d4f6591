"""The SimSearch network: a ResNet-18 trunk with a projection head for contrastive learning
(SimCLR, SupCon) and one linear layer on the 512-d embedding for classification."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from fishline.errors import InputError

EMBEDDING = 512


class SimSearchNet(nn.Module):
    """torchvision ResNet-18 (random init, or a local torchvision state-dict file) whose
    first convolution takes ``in_channels``; ``classes`` outputs (target classes + background).

    ``weights`` is only read at construction; a saved SimSearch model keeps the trained
    weights itself, so :func:`fishline.models.load` never needs the file again. A 3-channel
    first convolution in the file is mapped to ``in_channels`` by giving every input channel
    the mean RGB filter, scaled by 3 / in_channels (the response to a grey image is kept).
    """

    def __init__(
        self,
        classes: list[str],
        in_channels: int,
        backbone: str = "resnet18",
        projection: int = 128,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        if backbone != "resnet18":
            raise InputError("model", f"unknown SimSearch backbone '{backbone}'; known: resnet18")
        net = torchvision.models.resnet18(weights=None)
        if weights is not None:
            _load_resnet_weights(net, weights)
        if in_channels != 3:
            pretrained = net.conv1.weight.detach()
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
            if weights is not None:
                mean = pretrained.mean(dim=1, keepdim=True) * 3 / in_channels
                net.conv1.weight.data.copy_(mean.expand(-1, in_channels, -1, -1))
        net.fc = nn.Identity()
        self.classes = list(classes)
        self.trunk = net
        self.head = nn.Sequential(
            nn.Linear(EMBEDDING, EMBEDDING), nn.ReLU(inplace=True), nn.Linear(EMBEDDING, projection)
        )
        self.classifier = nn.Linear(EMBEDDING, len(classes))
        self._frozen: list[nn.Module] = []

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The 512-d embedding (global average pool after layer4)."""
        return self.trunk(images)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """The 2-fc projection head used by the contrastive losses (not normalised)."""
        return self.head(embedding)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """Class logits from an embedding (one linear layer)."""
        return self.classifier(embedding)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits of images."""
        return self.classify(self.embed(images))

    def freeze(self, modules: list[nn.Module]) -> None:
        """Stop training ``modules``: no gradients, batch-norm statistics kept (eval mode)."""
        for module in modules:
            module.requires_grad_(False)
            module.eval()
            self._frozen.append(module)

    def freeze_early(self) -> None:
        """Freeze the stem and the first two residual stages (notes: SimCLR setting)."""
        net = self.trunk
        self.freeze([net.conv1, net.bn1, net.layer1, net.layer2])

    def freeze_backbone(self) -> None:
        """Freeze the whole trunk (the linear-classifier stage)."""
        self.freeze([self.trunk])

    def train(self, mode: bool = True) -> SimSearchNet:
        """Switch modes, keeping frozen parts in eval mode (their batch norms stay fixed)."""
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self


def _load_resnet_weights(net: nn.Module, path: str) -> None:
    """Load a torchvision ResNet-18 state dict (its fc layer is ignored)."""
    if not Path(path).is_file():
        raise InputError(path, "ResNet-18 weights file not found", item="weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt files
        raise InputError(path, f"cannot read weights ({error})", item="weights") from error
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    wrong = [k for k in missing if not k.startswith("fc.")] + list(unexpected)
    if wrong:
        raise InputError(path, f"not a ResNet-18 state dict (keys {wrong[:4]})", item="weights")
