"""Benchmark peer of the toolkit's ResNet-34: torchvision's resnet34 on the CPU.

Modes (each on seeded random images, the same shapes the toolkit's
workloads use):

* `train`: resnet34(num_classes=5) in train mode, Adam (lr 1e-3), a
  categorical focal loss (gamma 2, alpha 0.25, as the toolkit's default)
  on softmax outputs; `--warmup` steps, then `--steps` timed steps of
  forward, loss, backward and optimizer step on a batch of `--batch`
  float images.
* `infer`: eval mode under torch.no_grad(), batches of `--batch` float
  images, `--warmup` batches then `--batches` timed ones; the outputs are
  copied out as NumPy (as the toolkit's dataSync does).
* `predict`: as `infer` but from uint8 NHWC pixels, as a prediction script
  gets them: converted to float NCHW per batch, and with `--tta` averaged
  over the 8 rotations and flips of the square.

Uses torch.set_num_threads(`--threads`, default os.cpu_count()).
Prints one JSON line last: {"images_per_sec", "images", "seconds", ...}.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision


def focal_loss(probs, onehot, gamma=2.0, alpha=0.25, eps=1e-7):
    p = torch.clamp(probs, eps, 1 - eps)
    weight = alpha * (1 - p) ** gamma
    return torch.mean(torch.sum(weight * (-onehot * torch.log(p)), dim=-1))


def random_batch(generator, batch, size):
    x = torch.rand((batch, 3, size, size), generator=generator) * 2 - 1
    labels = torch.randint(0, 5, (batch,), generator=generator)
    return x, torch.nn.functional.one_hot(labels, 5).float()


def timed(run_once, warmup, count):
    for _ in range(warmup):
        run_once()
    start = time.perf_counter()
    for _ in range(count):
        run_once()
    return time.perf_counter() - start


def train(args, model, generator):
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = random_batch(generator, args.batch, args.size)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = focal_loss(torch.softmax(model(x), dim=-1), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    seconds = timed(step, args.warmup, args.steps)
    return args.batch * args.steps, seconds


def infer(args, model, generator):
    model.eval()
    x, _ = random_batch(generator, args.batch, args.size)

    def once():
        with torch.no_grad():
            return torch.softmax(model(x), dim=-1).numpy()

    seconds = timed(once, args.warmup, args.batches)
    return args.batch * args.batches, seconds


def dihedral(x, t):
    """Transform t (0..7) of an NCHW batch: t % 4 quarter turns, mirrored when t >= 4."""
    if t >= 4:
        x = torch.flip(x, dims=[3])
    return torch.rot90(x, t % 4, dims=[2, 3])


def predict(args, model, generator):
    model.eval()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(args.batch, args.size, args.size, 3), dtype=np.uint8)

    def once():
        with torch.no_grad():
            x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1)
            if not args.tta:
                return torch.softmax(model(x), dim=-1).numpy()
            total = None
            for t in range(8):
                y = torch.softmax(model(dihedral(x, t).contiguous()), dim=-1)
                total = y if total is None else total + y
            return (total / 8).numpy()

    seconds = timed(once, args.warmup, args.batches)
    return args.batch * args.batches, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["train", "infer", "predict"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--batches", type=int, default=5, help="timed inference batches")
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = torchvision.models.resnet34(num_classes=5)
    run = {"train": train, "infer": infer, "predict": predict}[args.mode]
    images, seconds = run(args, model, generator)
    print(f"torch {args.mode}: {images} images in {seconds:.2f} s "
          f"({torch.get_num_threads()} threads)", file=sys.stderr)
    print(json.dumps({
        "images_per_sec": images / seconds,
        "images": images,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
