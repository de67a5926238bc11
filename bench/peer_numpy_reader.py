"""Benchmark peer of the toolkit's training input pipeline (dataset reader +
augmentation), written as a careful NumPy user would without a DataLoader.

Reads the same 64 px images (exported by the harness as an (N, H, W, 3)
uint8 .npy, opened memory-mapped), and per epoch: a seeded shuffle, then
per batch a gather of the batch's images and, per image, the toolkit's
augmentation: a random rotation by a multiple of 90 degrees and a random
mirror (np.rot90, a reversed slice), a random shift of up to 3 px with
edge pixels repeated (np.pad mode "edge" and a slice), a contrast change
of up to 10 % around the image mean and a brightness change of up to 5 %
of 255, clipped to [0, 255], into a float32 batch.

Prints one JSON line last: {"images_per_sec", "images", "seconds"}; the
first `--warmup-batches` batches are not timed.
"""

import argparse
import json
import sys
import time

import numpy as np


def augment(batch, rng, max_shift=3, brightness=0.05, contrast=0.1):
    n, side = batch.shape[0], batch.shape[1]
    out = np.empty(batch.shape, dtype=np.float32)
    m = max_shift
    for i in range(n):
        img = np.rot90(batch[i], rng.integers(4))
        if rng.random() < 0.5:
            img = img[:, ::-1]
        dy, dx = rng.integers(-m, m + 1, size=2)
        padded = np.pad(img, ((m, m), (m, m), (0, 0)), mode="edge")
        img = padded[m - dy:m - dy + side, m - dx:m - dx + side].astype(np.float32)
        c = 1 + rng.uniform(-contrast, contrast)
        b = rng.uniform(-brightness, brightness) * 255
        mean = img.mean()
        img -= mean
        img *= c
        img += mean + b
        np.clip(img, 0, 255, out=out[i])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--npy", required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--warmup-batches", type=int, default=5)
    args = parser.parse_args()

    images = np.load(args.npy, mmap_mode="r")
    n = images.shape[0]
    rng = np.random.default_rng(0)
    seen = timed = 0
    checksum = 0.0
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = np.random.default_rng(epoch).permutation(n)
        for at in range(0, n, args.batch):
            index = np.sort(order[at:at + args.batch])  # sorted reads from the memory map
            out = augment(images[index], rng)
            checksum += float(out[-1, -1, -1, -1])
            seen += 1
            if seen == args.warmup_batches:
                start = time.perf_counter()
            elif seen > args.warmup_batches:
                timed += len(index)
    seconds = time.perf_counter() - start
    if timed == 0:
        raise SystemExit("no timed batches: lower --warmup-batches or raise --epochs")
    print(f"numpy reader: {timed} images in {seconds:.2f} s (checksum {checksum})",
          file=sys.stderr)
    print(json.dumps({"images_per_sec": timed / seconds, "images": timed, "seconds": seconds,
                      "batch": args.batch, "epochs": args.epochs}))


if __name__ == "__main__":
    main()
