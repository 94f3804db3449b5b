"""ResNet-50 encoder of RVM (Lin et al., WACV 2022), pure torch.

Same module tree as torchvision's ``ResNet`` with ``Bottleneck`` blocks, as subclassed by the
official RVM code (``model/resnet.py``): ``conv1``/``bn1``/``layer1..4``, blocks with
``conv1..3``/``bn1..3``/``downsample.{0,1}``, so ``rvm_resnet50.pth`` loads with ``strict=True``.
``layer4`` replaces its stride with dilation 2, so the features come at 1/2, 1/4, 1/8, 1/16.
As in the official encoder, the input is not ImageNet-normalised.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Bottleneck", "ResNet50Encoder"]


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1 -> 3x3 (stride, dilation) -> 1x1 (x4), plus the shortcut."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50Encoder(nn.Module):
    """ResNet-50 feature extractor with a dilated ``layer4``.

    Shape:
        x: ``[B, 3, H, W]`` or ``[B, T, 3, H, W]`` RGB 0..1.
        Returns ``[f1, f2, f3, f4]`` with 64, 256, 512, 2048 channels at 1/2, 1/4, 1/8, 1/16.
    """

    feature_channels = (64, 256, 512, 2048)

    def __init__(self) -> None:
        super().__init__()
        self._in_channels = 64
        self._dilation = 1
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2, dilate=True)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        out_channels = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or self._in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self._in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        layers = [Bottleneck(self._in_channels, planes, stride, previous_dilation, downsample)]
        self._in_channels = out_channels
        layers += [Bottleneck(out_channels, planes, dilation=self._dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_single_frame(self, x: Tensor) -> list[Tensor]:
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer4(self.layer3(f3))
        return [f1, f2, f3, f4]

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.ndim == 5:
            batch, frames = x.shape[:2]
            features = self.forward_single_frame(x.flatten(0, 1))
            return [f.unflatten(0, (batch, frames)) for f in features]
        return self.forward_single_frame(x)
