"""Copies torchvision's reference figures into the project's tests (run once; commit the output).

Inputs (measured with torchvision 0.29.2 / PyTorch 2.15 by the project, see their READMEs):
  torchvision_logits.json   logits of the eight CNNs (num_classes 4, eval mode) on two 3x64x64 inputs
                            under deterministic splitmix64 weights, with state-dict entry and
                            parameter counts;
  torchvision-keys/*.txt    each model's state_dict: name, shape, dtype per line (GoogLeNet with its
                            auxiliary heads), the parameter count in the header.
Output:
  Tests/Fixtures/torchvision_fixtures.json   read by the Swift tests (TorchvisionFixtures.swift) and
                                             the Python tests (test_zoo.py) alike.

Usage: python3 Tests/Fixtures/make_torchvision_fixtures.py FIXTURES_JSON KEYS_DIR
"""
import json
import os
import re
import sys

ARCHS = ["resnet18", "resnet50", "vgg16", "vgg19", "alexnet", "densenet121", "mobilenet_v2", "googlenet"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_keys(path):
    with open(path) as f:
        header = f.readline()
        params = int(re.search(r"parameters=(\d+)", header).group(1))
        keys = []
        for line in f:
            line = line.strip()
            if not line:
                continue
            m = re.fullmatch(r"(\S+) \[([0-9, ]*)\] (float32|int64)", line)
            if not m:
                raise ValueError(f"{path}: cannot parse {line!r}")
            shape = [int(s) for s in m.group(2).split(",") if s.strip()]
            keys.append((m.group(1), shape, m.group(3)))
    return params, keys


def main(fixtures_json, keys_dir):
    with open(fixtures_json) as f:
        fixtures = json.load(f)
    out = {"source": "torchvision 0.29.2, PyTorch 2.15 (CPU); weights and inputs: splitmix64 rules, "
                      "see Tests/Fixtures/make_torchvision_fixtures.py and the tests",
           "num_classes": fixtures["num_classes"], "archs": {}}
    for arch in ARCHS:
        ref = fixtures["archs"][arch]
        params, keys = read_keys(os.path.join(keys_dir, arch + ".txt"))
        out["archs"][arch] = {"state_dict_entries": ref["state_dict_entries"], "parameters": ref["parameters"],
                              "key_list_parameters": params, "logits": ref["logits"],
                              "keys": [[n, s, d] for n, s, d in keys]}
    with open(os.path.join(ROOT, "Tests/Fixtures/torchvision_fixtures.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
