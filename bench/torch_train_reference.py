"""The PyTorch reference for `deno task train`: torchvision's resnet34 trained on the
same preprocessed dataset (same shards, same split, same input size), with the same
epochs, batch, optimizer (Adam, linear warm-up then cosine decay), loss (categorical
focal loss, Keras semantics, or cross-entropy) and augmentation family (the 8
rotations/flips of the square with handed classes swapped on mirrors, small shifts),
so that both toolkits' test accuracy on the same split can be compared.

Run with Debian's packages (apt-get install python3-torch python3-torchvision):
    /usr/bin/python3 bench/torch_train_reference.py --data DATASET --epochs 10 --batch 32 \
        --lr 1e-3 --loss focal --gamma 2 --alpha 0.25 --seed 0 [--out report.json]

Prints one JSON line with the test metrics (accuracy, balanced accuracy, macro-F1).
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision


def read_split(data_dir, split):
    """Pixels (N, H, W, 3) uint8 and labels (N,) int64 of one split, from the shard files."""
    with open(os.path.join(data_dir, "manifest.json")) as f:
        manifest = json.load(f)
    pixels, labels = [], []
    for shard in manifest["shards"]:
        if shard["split"] != split:
            continue
        with open(os.path.join(data_dir, shard["file"]), "rb") as f:
            blob = f.read()
        meta_offset, meta_length = struct.unpack_from("<QI", blob, len(blob) - 16)
        assert blob[-4:] == b"GZS1", f"{shard['file']}: not a shard"
        meta = json.loads(blob[meta_offset:meta_offset + meta_length])
        n, h, w = meta["count"], meta["height"], meta["width"]
        pixels.append(np.frombuffer(blob, np.uint8, n * h * w * 3).reshape(n, h, w, 3))
        labels.append(np.frombuffer(blob, "<i4", n, meta["labelsOffset"]).astype(np.int64))
    return np.concatenate(pixels), np.concatenate(labels), manifest


def focal_loss(logits, target, alpha, gamma, eps=1e-7):
    """Keras' CategoricalFocalCrossentropy on softmax outputs, mean over the batch."""
    p = F.softmax(logits, dim=1).clamp(eps, 1 - eps)
    y = F.one_hot(target, p.shape[1]).float()
    return (alpha * (1 - p) ** gamma * -y * torch.log(p)).sum(1).mean()


def augment(x, y, flip_swap, rng, max_shift=3, brightness=0.05, contrast=0.1):
    """As lib/train/augment.ts: random dihedral transform (swapping handed classes on
    mirrors), shift, and brightness/contrast jitter, per image."""
    out = np.empty(x.shape, np.float32)
    y = y.copy()
    for i in range(len(x)):
        t = rng.integers(8)
        img = np.rot90(x[i], k=t % 4)
        if t >= 4:
            img = img[:, ::-1]
            y[i] = flip_swap.get(int(y[i]), int(y[i]))
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        img = np.roll(img, (dy, dx), axis=(0, 1)).astype(np.float32)
        c = 1 + rng.uniform(-contrast, contrast)
        b = rng.uniform(-brightness, brightness) * 255
        m = img.mean()
        out[i] = np.clip((img - m) * c + m + b, 0, 255)
    return out, y


def metrics(pred, truth, classes):
    c = len(classes)
    cm = np.zeros((c, c), np.int64)
    for t, p in zip(truth, pred):
        cm[t, p] += 1
    support, predicted, tp = cm.sum(1), cm.sum(0), np.diag(cm)
    recall = [tp[k] / support[k] for k in range(c) if support[k] > 0]
    f1s = []
    for k in range(c):
        if support[k] == 0 and predicted[k] == 0:
            continue
        prec = tp[k] / predicted[k] if predicted[k] else 0.0
        rec = tp[k] / support[k] if support[k] else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return {
        "accuracy": float(tp.sum() / max(1, cm.sum())),
        "balanced_accuracy": float(np.mean(recall)) if recall else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "confusion": cm.tolist(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--loss", choices=["focal", "ce"], default="focal")
    ap.add_argument("--gamma", type=float, default=2.0)
    ap.add_argument("--alpha", type=float, default=0.25)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)

    xtr, ytr, manifest = read_split(a.data, "train")
    xva, yva, _ = read_split(a.data, "val")
    xte, yte, _ = read_split(a.data, "test")
    classes = manifest["scheme"]["classNames"]
    flip_swap = {}
    for i, j in manifest["scheme"]["flipPairs"]:
        flip_swap[i], flip_swap[j] = j, i
    mean = torch.tensor(manifest["stats"]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(manifest["stats"]["std"]).view(1, 3, 1, 1)

    model = torchvision.models.resnet34(num_classes=len(classes))
    model.fc = torch.nn.Sequential(torch.nn.Dropout(a.dropout), model.fc)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    steps = len(xtr) // a.batch
    total, warm = steps * a.epochs, round(a.warmup * steps)

    def lr_at(s):
        if s < warm:
            return a.lr * (s + 1) / warm
        return a.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, total - warm))))

    def to_tensor(x):
        return (torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float() - mean) / std

    def predict(x):
        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 64):
                out.append(model(to_tensor(x[i:i + 64])).argmax(1).numpy())
        return np.concatenate(out)

    step, best, best_state, started = 0, -1.0, None, time.time()
    for epoch in range(a.epochs):
        model.train()
        order = rng.permutation(len(xtr))
        for b in range(steps):
            idx = order[b * a.batch:(b + 1) * a.batch]
            xb, yb = augment(xtr[idx], ytr[idx], flip_swap, rng)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            logits = model(to_tensor(xb))
            target = torch.from_numpy(yb)
            loss = focal_loss(logits, target, a.alpha, a.gamma) if a.loss == "focal" else F.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        val = metrics(predict(xva), yva, classes)
        print(f"epoch {epoch + 1}: val accuracy {val['accuracy']:.4f}", file=sys.stderr)
        if val["accuracy"] > best:
            best, best_state = val["accuracy"], {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    result = {"peer": "torch", "torch": torch.__version__, "split": "test", "n": int(len(yte)),
              "seconds": round(time.time() - started, 1), "options": vars(a),
              **metrics(predict(xte), yte, classes)}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "confusion"}))


if __name__ == "__main__":
    main()
