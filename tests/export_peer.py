"""Python peer of tests/export_python_test.ts: reads exported models with
Debian's python3-onnx and PyTorch and prints one JSON line.

    export_peer.py onnx FILE...          onnx.checker (full) + inputs, outputs, metadata
    export_peer.py torch FILE NPY...     python/galaxy_torch.py's model on NPY's uint8 NHWC pixels,
                                         for each pair of FILE and NPY
    export_peer.py torchvision FILE NPY  torchvision.models.resnet34 + load_state_dict(strict=True):
                                         softmax outputs as loaded, and after match_tf_padding
                                         (which old, TF-padded runs need)
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))


def check_onnx(files):
    import onnx

    out = {}
    for f in files:
        m = onnx.load(f)
        onnx.checker.check_model(m, full_check=True)

        def dims(v):
            return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

        out[f] = {
            "ir_version": m.ir_version,
            "opset": [o.version for o in m.opset_import if o.domain == ""],
            "inputs": [[v.name, dims(v)] for v in m.graph.input],
            "outputs": [[v.name, dims(v)] for v in m.graph.output],
            "metadata": {p.key: p.value for p in m.metadata_props},
        }
    return out


def pixels(npy):
    import numpy as np
    import torch

    return torch.from_numpy(np.load(npy)).permute(0, 3, 1, 2).float()


def run_torch(file, npy):
    import torch
    import galaxy_torch

    model, meta = galaxy_torch.load(file)
    with torch.no_grad():
        return {"outputs": model(pixels(npy)).tolist(), "metadata": meta}


def run_torchvision(file, npy):
    import torch
    import torchvision
    import galaxy_torch

    tensors, meta = galaxy_torch.read_safetensors(file)
    model = torchvision.models.resnet34(num_classes=len(json.loads(meta["classes"])))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    mean = torch.tensor(json.loads(meta["mean"])).view(1, 3, 1, 1)
    std = torch.tensor(json.loads(meta["std"])).view(1, 3, 1, 1)
    x = (pixels(npy) - mean) / std
    with torch.no_grad():
        plain = torch.softmax(model(x), dim=1).tolist()
        galaxy_torch.match_tf_padding(model)
        matched = torch.softmax(model(x), dim=1).tolist()
    return {"plain": plain, "matched": matched}


def main():
    torch_threads = 1
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "onnx":
        result = check_onnx(args)
    else:
        import torch

        torch.set_num_threads(torch_threads)
        if mode == "torch":
            result = [run_torch(f, npy) for f, npy in zip(args[::2], args[1::2])]
        else:
            result = run_torchvision(*args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
