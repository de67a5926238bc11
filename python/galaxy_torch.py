"""The galaxy toolkit's ResNet-34 in PyTorch, from `deno task export --format torch`.

    import galaxy_torch
    model, meta = galaxy_torch.load("model.safetensors")
    probs = model(pixels)  # float [N, 3, H, W], RGB, 0-255 -> what `deno task predict` writes

The file holds torchvision `resnet34` state-dict names; its metadata holds
the classes, the standardisation (mean and std in 0-255 units), the crop and
size, the stem, the head and the batch-norm epsilon. `load` builds the
matching module for every stem, head and width and gives the toolkit's
numbers (within 1e-4). Two details make that exact:

* TensorFlow's `same` padding of a 3x3 stride-2 convolution over an even
  side pads 0 pixels before and 1 after, where torch's `padding=1` pads 1
  on both sides; `match_tf_padding` pads those convolutions as TF does.
* The batch-norm epsilon is the file's `bn_epsilon`.

For the imagenet stem at width 1, `torchvision.models.resnet34(num_classes=N)`
loads the same file with `load_state_dict(..., strict=True)`; call
`match_tf_padding` on it for the toolkit's numbers.

Needs torch and torchvision; no other package (the safetensors format is
read here, per its specification).
"""

import json
import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

_DTYPES = {"F32": torch.float32, "I64": torch.int64}


def read_safetensors(path):
    """(tensors by name, metadata dict) of a safetensors file (F32 and I64 tensors)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n :]
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        raw = torch.frombuffer(bytearray(body[begin:end]), dtype=_DTYPES[t["dtype"]])
        tensors[name] = raw.reshape(t["shape"])
    return tensors, meta


def _same_pads(size, kernel, stride):
    """TF's `same` padding of one axis: (before, after), the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_like_tf(conv, inputs):
    (x,) = inputs
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    top, bottom = _same_pads(x.shape[2], kh, sh)
    left, right = _same_pads(x.shape[3], kw, sw)
    return (F.pad(x, (left, right, top, bottom)),)


def match_tf_padding(model):
    """Pads every 3x3 stride-2 convolution of `model` as TF's `same` does (in place)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.stride == (2, 2):
            m.padding = (0, 0)
            m.register_forward_pre_hook(_pad_like_tf)
    return model


class ResNet34(nn.Module):
    """torchvision's resnet34 (same names) with any widths and the toolkit's two stems."""

    def __init__(self, filters, num_classes, stem="imagenet"):
        super().__init__()
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(3, filters[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        elif stem == "small":
            self.conv1 = nn.Conv2d(3, filters[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            raise ValueError(f"unknown stem {stem!r}")
        self.bn1 = nn.BatchNorm2d(filters[0])
        self.relu = nn.ReLU(inplace=True)
        inplanes = filters[0]
        for i, (planes, blocks) in enumerate(zip(filters[1:], [3, 4, 6, 3])):
            layers = []
            for b in range(blocks):
                stride = 2 if i > 0 and b == 0 else 1
                down = None
                if stride != 1 or inplanes != planes:
                    down = nn.Sequential(
                        nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
                    )
                layers.append(BasicBlock(inplanes, planes, stride, down))
                inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def tree_votes(logits, tree):
    """The tree vote head: each question's softmax times the sum of its parent answers.

    `tree` is the file's `vote_tree`: per question in column order, its
    [start, end) columns and the column indices of its parent answers."""
    cols = [None] * logits.shape[1]
    for q in tree:
        start, end = q["columns"]
        p = torch.softmax(logits[:, start:end], dim=1)
        if q["parents"]:
            p = p * sum(cols[c] for c in q["parents"])
        for i in range(start, end):
            cols[i] = p[:, i - start : i - start + 1]
    return torch.cat(cols, dim=1)


class GalaxyModel(nn.Module):
    """Standardisation, the trunk and the head: 0-255 RGB pixels [N, 3, H, W] in,
    class probabilities or the 37 vote fractions out (as `deno task predict`)."""

    def __init__(self, trunk, meta):
        super().__init__()
        self.trunk = trunk
        self.head = meta["head"]
        self.tree = json.loads(meta["vote_tree"]) if self.head == "tree" else None
        self.register_buffer("mean", torch.tensor(json.loads(meta["mean"])).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(json.loads(meta["std"])).view(1, -1, 1, 1))

    def forward(self, pixels):
        logits = self.trunk((pixels - self.mean) / self.std)
        if self.head == "softmax":
            return torch.softmax(logits, dim=1)
        if self.head == "sigmoid":
            return torch.sigmoid(logits)
        return tree_votes(logits, self.tree)


def load(path):
    """(GalaxyModel in eval mode, metadata) from an exported safetensors file."""
    tensors, meta = read_safetensors(path)
    filters = json.loads(meta["filters"])
    trunk = ResNet34(filters, tensors["fc.weight"].shape[0], meta["stem"])
    trunk.load_state_dict(tensors, strict=True)
    for m in trunk.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = float(meta["bn_epsilon"])
    match_tf_padding(trunk)
    return GalaxyModel(trunk, meta).eval(), meta
