"""CycleGAN networks (Zhu et al. 2017): the ResNet generator and the 70x70 PatchGAN."""

from __future__ import annotations

from torch import nn


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with instance norm and a skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-f, d2f, d4f, ``blocks`` residual blocks, u2f, uf, c7s1-out, tanh."""

    def __init__(self, in_channels: int, out_channels: int, filters: int, blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, filters, 7),
            nn.InstanceNorm2d(filters),
            nn.ReLU(True),
        ]
        channels = filters
        for _ in range(2):
            layers += [
                nn.Conv2d(channels, channels * 2, 3, 2, 1),
                nn.InstanceNorm2d(channels * 2),
                nn.ReLU(True),
            ]
            channels *= 2
        layers += [ResidualBlock(channels) for _ in range(blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 3, 2, 1, output_padding=1),
                nn.InstanceNorm2d(channels // 2),
                nn.ReLU(True),
            ]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN: C64-C128-C256-C512 (4x4 kernels), one real/fake score per patch."""

    def __init__(self, in_channels: int, filters: int, layers: int = 3) -> None:
        super().__init__()
        parts: list[nn.Module] = [
            nn.Conv2d(in_channels, filters, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
        ]
        channels = filters
        for index in range(1, layers + 1):
            out = filters * min(2**index, 8)
            stride = 2 if index < layers else 1
            parts += [
                nn.Conv2d(channels, out, 4, stride, 1),
                nn.InstanceNorm2d(out),
                nn.LeakyReLU(0.2, True),
            ]
            channels = out
        parts.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.model = nn.Sequential(*parts)

    def forward(self, x):
        return self.model(x)


class CycleGAN(nn.Module):
    """Both generators (g_ab: DAPI -> painted, g_ba: painted -> DAPI) in one module."""

    def __init__(self, channels: int, filters: int, blocks: int) -> None:
        super().__init__()
        self.g_ab = ResnetGenerator(channels, channels, filters, blocks)
        self.g_ba = ResnetGenerator(channels, channels, filters, blocks)

    def forward(self, x):
        """Translate DAPI-domain crops into the painted-aberration domain."""
        return self.g_ab(x)
