"""Compare two tokens_check outputs (old tree vs new tree): identical tokens, first divergence, log-p gap.
Usage: python issue15-tokens-compare.py OLD.pt NEW.pt"""

import sys

import torch

a, b = torch.load(sys.argv[1]), torch.load(sys.argv[2])
for k in a:
    ta, tb = a[k]["tokens"], b[k]["tokens"]
    same = (ta == tb).all(dim=1)
    diff = (ta != tb)
    first = [int(row.nonzero()[0]) if row.any() else -1 for row in diff]
    dl = (a[k]["logp"] - b[k]["logp"]).abs()
    print(f"{k}: init checksum equal {a[k]['csum'] == b[k]['csum']}; {int(same.sum())}/{len(same)} samples token-identical over {ta.shape[1]} tokens; first divergence per sample (min) {min([f for f in first if f >= 0], default=-1)}; max |dlogp| before divergence {float(dl[:, :max(1, min([f for f in first if f >= 0], default=ta.shape[1]))].max()):.2e}")
