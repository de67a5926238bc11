"""Prints, as one JSON line, the versions of Python and of the packages the
benchmark peers import (null for a package that does not import), so the
harness can record them and mark a peer "not installed"."""

import importlib
import json
import os
import platform


def version_of(module_name):
    try:
        module = importlib.import_module(module_name)
    except Exception:  # not installed, or broken: either way the peer cannot run
        return None
    return getattr(module, "__version__", "unknown")


def torch_threads():
    try:
        import torch
    except Exception:
        return None
    return torch.get_num_threads()


print(json.dumps({
    "python": platform.python_version(),
    "executable": os.path.realpath(__import__("sys").executable),
    "numpy": version_of("numpy"),
    "PIL": version_of("PIL"),
    "torch": version_of("torch"),
    "torchvision": version_of("torchvision"),
    "torch_default_threads": torch_threads(),
}))
