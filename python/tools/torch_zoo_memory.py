"""The PyTorch side of `python -m medsynth.bench zoo_memory` (run it with a torch/torchvision
interpreter outside the project; torch is never a dependency of medsynth): peak resident memory
above import of three training steps of each CNN, each in a fresh process."""
import subprocess, sys, json
PROBE = """
import resource, sys, torch, torch.nn.functional as F, torchvision.models as tv
torch.set_num_threads(2)
x = torch.randn(32, 3, 64, 64); y = torch.arange(32) % 4
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kw = {"aux_logits": False, "init_weights": True} if sys.argv[1] == "googlenet" else {}
m = getattr(tv, sys.argv[1])(num_classes=4, **kw).train(); opt = torch.optim.AdamW(m.parameters(), 1e-3)
for _ in range(3):
    loss = F.cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); opt.step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""
out = {"workload": "zoo_memory_torch", "unit": "MiB above import"}
for a in ["resnet18", "resnet50", "vgg16", "vgg19", "alexnet", "densenet121", "mobilenet_v2", "googlenet"]:
    r = subprocess.run([sys.executable, "-c", PROBE, a], capture_output=True, text=True, check=True)
    out[a] = round(float(r.stdout.split()[-1]), 1)
print(json.dumps(out))
