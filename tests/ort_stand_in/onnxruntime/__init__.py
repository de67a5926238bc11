"""A stand-in for Python's `onnxruntime` in tests/export_docs_test.ts, where
that package is not installed (it is not a Debian package): the part of its
API that docs/export.md uses, running the model with the same ONNX Runtime
engine through onnxruntime-node (tests/ort_stand_in/run_onnx.ts). Metadata
is read with python3-onnx.
"""

import json
import os
import subprocess
import tempfile

import numpy as np
import onnx

_HERE = os.path.dirname(os.path.abspath(__file__))
_RUNNER = os.path.join(_HERE, "..", "run_onnx.ts")
_CONFIG = os.path.join(_HERE, "..", "..", "..", "deno.json")


def get_available_providers():
    return ["CPUExecutionProvider"]


class _Meta:
    def __init__(self, model):
        self.custom_metadata_map = {p.key: p.value for p in model.metadata_props}


class _Arg:
    def __init__(self, name):
        self.name = name


class InferenceSession:
    def __init__(self, path, providers=None):
        unknown = set(providers or []) - set(get_available_providers())
        if unknown:
            raise ValueError(f"providers not available here: {sorted(unknown)}")
        self._path = os.path.abspath(path)
        self._model = onnx.load(path)

    def get_modelmeta(self):
        return _Meta(self._model)

    def get_inputs(self):
        return [_Arg(v.name) for v in self._model.graph.input]

    def get_outputs(self):
        return [_Arg(v.name) for v in self._model.graph.output]

    def run(self, output_names, feeds):
        ((name, array),) = feeds.items()
        array = np.ascontiguousarray(array, dtype=np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            x, y = os.path.join(tmp, "x.f32"), os.path.join(tmp, "y.f32")
            array.tofile(x)
            args = [self._path, name, json.dumps(list(array.shape)), x, y]
            r = subprocess.run(
                [os.environ.get("DENO", "deno"), "run", "--allow-read", "--allow-write",
                 "--allow-env", "--allow-ffi", "--config", _CONFIG, _RUNNER, *args],
                capture_output=True, text=True, timeout=120,
            )
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
            shape = json.loads(r.stdout.strip().splitlines()[-1])
            out = np.fromfile(y, dtype=np.float32).reshape(shape)
        return [out]
