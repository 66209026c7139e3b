"""Fixed-seed tokens on the GPU from this tree: random-init models (torch.manual_seed(0)), fused step.
Usage: python issue15-tokens-check.py OUT.pt  (run with the tree's packages importable)."""
import os
import sys
import time

import torch

from audiomamba.generate.sampler import generate_tokens
from audiomamba.generate.stepper import SamplingConfig
from audiomamba.model import build_model
from audiomamba.recipe import load_recipe

out = {}
DEV = os.environ.get("DEV", "cuda")
LEN = int(os.environ.get("LEN", "4096"))
BATCHES = [int(b) for b in os.environ.get("BATCHES", "4,300").split(",")]
for name in ["sc09-mamba", "youtubemix-mamba-s6", "youtubemix-mamba-s4", "youtubemix-mamba-s4-real"]:
    r = load_recipe(name)
    torch.manual_seed(0)
    model = build_model(r.model_config()).to(DEV).eval()
    csum = float(sum(p.double().sum() for p in model.parameters()))
    for batch in BATCHES:
        t0 = time.perf_counter()
        g = generate_tokens(model, batch, LEN, batch, SamplingConfig(1.0), seed=0, device=DEV, progress=False)
        print(f"{name} batch {batch}: {time.perf_counter() - t0:.2f} s (sampling {g.seconds:.2f} s)", flush=True)
        out[f"{name}/b{batch}"] = {"tokens": g.tokens.cpu(), "logp": g.logp.cpu(), "csum": csum}
    print(name, "checksum", csum, flush=True)
torch.save(out, sys.argv[1])
