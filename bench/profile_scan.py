"""One forward + backward of the selective scan at (16, 128, 16, 16384) fp32 inside a profiler range,
for Nsight Compute (GPU)::

    ncu --profile-from-start off -k "regex:_scan_(fwd_seq|bwd)_kernel" -c 4 --section SpeedOfLight \\
        --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis python -m audiomamba.bench.profile_scan
"""

from __future__ import annotations

import torch
from audiomamba.bench.kernel import FULL_CASES, make_inputs, pass_fn


def main() -> None:
    from audiomamba.kernels import selective_scan

    fn = pass_fn(selective_scan, make_inputs(FULL_CASES[0], torch.float32, "cuda"), True)
    fn()  # compile outside the profiled range
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    fn()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()


if __name__ == "__main__":
    main()
