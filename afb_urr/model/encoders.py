"""Memory and query encoders: ResNet trunks cut after layer3 (1/16 scale).

Module names (``conv1``, ``bn1``, ``res2``..``res4``, ``mean``, ``std``,
``conv1_m``, ``conv1_o``) follow the published state_dict.
"""
from __future__ import annotations

import torch
from torch import nn
import torchvision

# backbone -> (r1, r2, r3, r4) channel counts of the trunk.
TRUNK_CHANNELS = {
    "resnet18": (64, 64, 128, 256),
    "resnet34": (64, 64, 128, 256),
    "resnet50": (64, 256, 512, 1024),
    "resnet101": (64, 256, 512, 1024),
}

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _resnet(backbone: str, pretrained: bool) -> nn.Module:
    """A torchvision ResNet, with ImageNet weights when ``pretrained``."""
    if backbone not in TRUNK_CHANNELS:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(TRUNK_CHANNELS)}")
    weights = "DEFAULT" if pretrained else None
    try:
        return torchvision.models.get_model(backbone, weights=weights)
    except Exception as e:  # network, cache or checksum failures
        if not pretrained:
            raise
        raise RuntimeError(
            f"could not fetch ImageNet weights for {backbone} through torchvision ({e}). "
            "Download them on a machine with internet access into the torch hub cache "
            "(TORCH_HOME), or train without ImageNet initialisation.") from e


class _Trunk(nn.Module):
    """Shared stem + layer1..3 of a ResNet, with ImageNet normalisation buffers."""

    def _init_trunk(self, backbone: str, pretrained: bool) -> None:
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        self._resnet = _resnet(backbone, pretrained)

    def _adopt_layers(self) -> None:
        net = self.__dict__["_modules"].pop("_resnet")
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.res2 = net.layer1  # 1/4
        self.res3 = net.layer2  # 1/8
        self.res4 = net.layer3  # 1/16

    def _tail(self, x: torch.Tensor):
        x = self.bn1(x)
        r1 = self.relu(x)                 # 1/2
        r2 = self.res2(self.maxpool(r1))  # 1/4
        r3 = self.res3(r2)                # 1/8
        r4 = self.res4(r3)                # 1/16
        return r4, r3, r2, r1


class MemoryEncoder(_Trunk):
    """Frame + one object's probability map -> r4 (N x C4 x H/16 x W/16).

    First conv = conv1(frame) + conv1_m(mask) + conv1_o(clamp(1 - mask, 0, 1)).
    """

    def __init__(self, backbone: str = "resnet50", pretrained: bool = False):
        super().__init__()
        self._init_trunk(backbone, pretrained)
        self.conv1_m = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.conv1_o = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self._adopt_layers()

    def forward(self, frame: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """frame N x 3 x H x W in [0,1], or 1 x 3 x H x W shared by all N masks (its
        normalisation and conv1 then run once); mask N x 1 x H x W -> r4."""
        if frame.shape[0] > 1 and frame.stride(0) == 0:  # an expanded frame: one distinct row
            frame = frame[:1]
        f = (frame - self.mean) / self.std
        other = (1 - mask).clamp(0, 1)
        x = self.conv1(f) + self.conv1_m(mask) + self.conv1_o(other)
        return self._tail(x)[0]


class QueryEncoder(_Trunk):
    """Frame -> (r4 1/16, r3 1/8, r2 1/4, r1 1/2)."""

    def __init__(self, backbone: str = "resnet50", pretrained: bool = False):
        super().__init__()
        self._init_trunk(backbone, pretrained)
        self._adopt_layers()

    def forward(self, frame: torch.Tensor):
        """frame B x 3 x H x W in [0,1] -> r4, r3, r2, r1."""
        f = (frame - self.mean) / self.std
        return self._tail(self.conv1(f))
