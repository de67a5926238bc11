"""The galaxy toolkit's ResNet-34 in PyTorch, from `deno task export --format torch`.

    import galaxy_torch
    model, meta = galaxy_torch.load("model.safetensors")
    probs = model(pixels)  # float [N, 3, H, W], RGB, 0-255 -> what `deno task predict` writes

The file holds torchvision `resnet34` state-dict names; its metadata holds
the classes, the standardisation (mean and std in 0-255 units), the crop and
size, the stem, the head and the batch-norm epsilon. `load` builds the
matching module for every stem, head and width and gives the toolkit's
numbers (within 1e-4). Three details make that exact:

* Models made since the toolkit's issue 23 pad a 3x3 stride-2 convolution
  1 pixel on every side, as torchvision does (`strided_conv_padding` is
  `torchvision`). Runs made before used TensorFlow's `same` padding, which
  over an even side pads 0 pixels before and 1 after (`tf_same`, also what
  a file without the key means); `match_tf_padding` pads those
  convolutions as TF did, and `load` calls it for such files only.
* A sigmoid head whose file says `tree_projection` `true` projects its 37
  fractions onto the Galaxy Zoo decision tree (`project_to_tree`, the
  toolkit's lib/model/tree_projection.ts).
* The batch-norm epsilon is the file's `bn_epsilon`.

For the imagenet stem at width 1, `torchvision.models.resnet34(num_classes=N)`
loads the same file with `load_state_dict(..., strict=True)` and, for a
`torchvision`-padded model, gives the toolkit's logits as it is; for a
`tf_same` one call `match_tf_padding` on it first.

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


# As lib/model/tree_projection.ts: the Dykstra iteration cap and the stopping tolerance.
MAX_PROJECTION_ITERATIONS = 10_000
PROJECTION_TOLERANCE = 1e-7


def _tree_constraints(tree):
    """The tree's constraints A v = b (float64): per question, its answers sum to its reach."""
    n = max(q["columns"][1] for q in tree)
    a = torch.zeros(len(tree), n, dtype=torch.float64)
    b = torch.zeros(len(tree), dtype=torch.float64)
    for k, q in enumerate(tree):
        start, end = q["columns"]
        a[k, start:end] = 1
        for p in q["parents"]:
            a[k, p] -= 1
        if not q["parents"]:
            b[k] = 1
    return a, b


def project_to_tree(votes, tree, tolerance=PROJECTION_TOLERANCE):
    """The nearest (Euclidean) tree-consistent, non-negative fractions to `votes` [N, 37].

    Dykstra's alternating projections between {A v = b} and v >= 0, in
    float64, image by image as the toolkit's `projectToTree`: x = votes
    (non-finite as 0), q = 0; each iteration y = the affine projection of
    x, z = y + q, x = max(z, 0), q = z - x; an image stops at the first y
    with no entry below -tolerance and outputs max(y, 0); one that never
    does within MAX_PROJECTION_ITERATIONS outputs its last x."""
    a, b = _tree_constraints(tree)
    w = torch.linalg.inv(a @ a.T) @ a  # (A A^T)^-1 A
    m = torch.eye(a.shape[1], dtype=torch.float64) - a.T @ w
    c = b @ w
    x = votes.to(torch.float64)
    x = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
    q = torch.zeros_like(x)
    out = x.clone()
    done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for _ in range(MAX_PROJECTION_ITERATIONS):
        y = x @ m + c
        z = y + q
        x = torch.relu(z)
        q = z - x
        converged = (-y).amax(dim=1).clamp(min=0) <= tolerance
        now = converged & ~done
        out[now] = torch.relu(y[now])
        done |= converged
        if bool(done.all()):
            break
    out[~done] = x[~done]
    return out.to(votes.dtype)


class GalaxyModel(nn.Module):
    """Standardisation, the trunk and the head: 0-255 RGB pixels [N, 3, H, W] in,
    class probabilities or the 37 vote fractions out (as `deno task predict`)."""

    def __init__(self, trunk, meta):
        super().__init__()
        self.trunk = trunk
        self.head = meta["head"]
        self.projected = self.head == "sigmoid" and meta.get("tree_projection") == "true"
        self.tree = json.loads(meta["vote_tree"]) if self.head == "tree" or self.projected else None
        self.register_buffer("mean", torch.tensor(json.loads(meta["mean"])).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(json.loads(meta["std"])).view(1, -1, 1, 1))

    def forward(self, pixels):
        logits = self.trunk((pixels - self.mean) / self.std)
        if self.head == "softmax":
            return torch.softmax(logits, dim=1)
        if self.head == "sigmoid":
            votes = torch.sigmoid(logits)
            return project_to_tree(votes, self.tree) if self.projected else votes
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
    # Files without the key were exported from runs made before the torchvision padding.
    if meta.get("strided_conv_padding", "tf_same") == "tf_same":
        match_tf_padding(trunk)
    return GalaxyModel(trunk, meta).eval(), meta
