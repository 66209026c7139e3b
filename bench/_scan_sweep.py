"""Scratch: time the Triton scan under launch configs (fwd and fwd+bwd), printing as it goes."""
import sys
import time

import torch

from bench.kernel import Case, copy_bandwidth, make_inputs, make_timer, min_bytes, pass_fn
from kernels.triton_scan import selective_scan_triton
from kernels.tuning import parse_config, pick_config

T0 = time.time()
budget = float(sys.argv[1])
mode = sys.argv[2]  # fwd | both
shapes = sys.argv[3].split(";")
configs = sys.argv[4:]
timer = make_timer("cuda", True)
bw = copy_bandwidth("cuda", timer)
print(f"{torch.cuda.get_device_name(0)} bw {bw/1e9:.0f} GB/s", flush=True)
for sh in shapes:
    kind, b, d, n, length, dn = sh.split(",")
    case = Case(int(b), int(d), int(n), int(length), kind)
    dtype = torch.float32 if dn == "fp32" else torch.bfloat16
    elt = 4 if dn == "fp32" else 2
    inputs = make_inputs(case, dtype, "cuda")
    for text in configs:
        if time.time() - T0 > budget:
            print("out of time", flush=True)
            sys.exit(0)
        cfg = pick_config(case.batch, case.d, case.N, case.L, case.lti) if text == "auto" else parse_config(text)

        def op(cfg=cfg, **kw):
            return selective_scan_triton(**kw, config=cfg)
        try:
            t_f = timer(pass_fn(op, inputs, False))
            msg = f"fwd {t_f:.3f} ms {100 * min_bytes(case, elt, False) / bw * 1e3 / t_f:.0f}%"
            if mode == "both":
                t_b = timer(pass_fn(op, inputs, True))
                msg += f" | f+b {t_b:.3f} ms {100 * min_bytes(case, elt, True) / bw * 1e3 / t_b:.0f}%"
        except Exception as err:  # noqa: BLE001
            msg = f"failed {type(err).__name__}: {str(err)[:120]}"
        print(f"{kind} {case.label()} {dn} cfg {text} ({cfg}): {msg}  [{time.time()-T0:.0f}s]", flush=True)
        torch.cuda.empty_cache()
