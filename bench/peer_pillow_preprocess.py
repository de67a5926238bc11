"""Benchmark peer of `deno task preprocess`: the same job done with Pillow.

Reads an input folder (labels.csv + images/, or the Kaggle layout
training_solutions_rev1.csv + images_training_rev1/), takes the centre
square of `--crop` (0.5) times the shorter side of every image, scales it to
`--size` (64) px, and writes the uint8 pixels (N, size, size, 3) and the
labels as .npy files into a temporary folder that is deleted afterwards.

Two ways of writing it:

* default ("careful"): what a Python user who cares about speed writes.
  JPEG draft mode lets libjpeg decode at 1/2, 1/4 or 1/8 scale (DCT
  scaling) when that still leaves enough pixels; crop and resize are one
  `resize(box=...)` call with the Lanczos filter (the toolkit's filter);
  the images are spread over `--processes` (default os.cpu_count())
  worker processes with multiprocessing.Pool and written into a
  memory-mapped .npy, so memory stays flat.
* `--plain`: the one-process script most users write: Image.open, convert,
  crop, resize (Pillow's default filter), np.asarray, appended to a list,
  stacked and saved at the end.

Prints one JSON line last: {"images_per_sec", "images", "seconds", ...},
timed from after the imports to after the output is written.
"""

import argparse
import csv
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_items(in_dir):
    """(image paths, labels) of the folder, in CSV order; labels are class
    indices (labels.csv) or the 37 vote fractions (Kaggle layout)."""
    kaggle_csv = os.path.join(in_dir, "training_solutions_rev1.csv")
    if os.path.isfile(kaggle_csv):
        image_dir = os.path.join(in_dir, "images_training_rev1")
        paths, votes = [], []
        with open(kaggle_csv, newline="") as f:
            rows = csv.reader(f)
            next(rows)
            for row in rows:
                if row:
                    paths.append(os.path.join(image_dir, row[0] + ".jpg"))
                    votes.append([float(v) for v in row[1:]])
        return paths, np.asarray(votes, dtype=np.float32)
    labels_csv = os.path.join(in_dir, "labels.csv")
    image_dir = os.path.join(in_dir, "images")
    by_id = {}
    for name in os.listdir(image_dir):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS:
            by_id[stem] = os.path.join(image_dir, name)
    paths, names = [], []
    with open(labels_csv, newline="") as f:
        for row in csv.DictReader(f):
            paths.append(by_id[row["id"]])
            names.append(row["label"])
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    return paths, np.asarray([index[n] for n in names], dtype=np.int32)


def centre_box(width, height, crop):
    side = crop * min(width, height)
    left = (width - side) / 2
    top = (height - side) / 2
    return (left, top, left + side, top + side)


# Settings of the careful workers, set once per process by the pool initializer.
SIZE = 64
CROP = 0.5


def init_worker(size, crop):
    global SIZE, CROP
    SIZE, CROP = size, crop


def load_careful(path):
    with Image.open(path) as img:
        width, height = img.size
        # Ask libjpeg for the smallest DCT scale that still leaves the crop at least SIZE px.
        scale = SIZE / (CROP * min(width, height))
        img.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
        img = img.convert("RGB")
        box = centre_box(img.size[0], img.size[1], CROP)
        img = img.resize((SIZE, SIZE), Image.LANCZOS, box=box)
        return np.asarray(img, dtype=np.uint8)


def run_careful(paths, out_dir, size, crop, processes):
    pixels = np.lib.format.open_memmap(
        os.path.join(out_dir, "images.npy"), mode="w+", dtype=np.uint8,
        shape=(len(paths), size, size, 3))
    with multiprocessing.Pool(processes, initializer=init_worker, initargs=(size, crop)) as pool:
        for i, image in enumerate(pool.imap(load_careful, paths, chunksize=16)):
            pixels[i] = image
    pixels.flush()
    del pixels


def run_plain(paths, out_dir, size, crop):
    images = []
    for path in paths:
        img = Image.open(path).convert("RGB")
        left, top, right, bottom = centre_box(img.size[0], img.size[1], crop)
        img = img.crop((round(left), round(top), round(right), round(bottom)))
        img = img.resize((size, size))
        images.append(np.asarray(img, dtype=np.uint8))
    np.save(os.path.join(out_dir, "images.npy"), np.stack(images))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--in", dest="in_dir", required=True)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--crop", type=float, default=0.5)
    parser.add_argument("--plain", action="store_true", help="the plain one-process script")
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    args = parser.parse_args()

    out_dir = tempfile.mkdtemp(prefix="galaxy-bench-pillow-")
    try:
        start = time.perf_counter()
        paths, labels = list_items(args.in_dir)
        if args.plain:
            run_plain(paths, out_dir, args.size, args.crop)
        else:
            run_careful(paths, out_dir, args.size, args.crop, args.processes)
        np.save(os.path.join(out_dir, "labels.npy"), labels)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(f"pillow {'plain' if args.plain else 'careful'}: {len(paths)} images in "
          f"{seconds:.2f} s", file=sys.stderr)
    print(json.dumps({
        "images_per_sec": len(paths) / seconds,
        "images": len(paths),
        "seconds": seconds,
        "mode": "plain" if args.plain else "careful",
        "processes": 1 if args.plain else args.processes,
    }))


if __name__ == "__main__":
    main()
