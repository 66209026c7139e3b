#!/bin/bash
# One device session of benchmarks, in priority order (issues 14 and 18); each writes its report to $RES
# as soon as it ends, so a session cut short keeps what finished. Poll with docs/gpu/poll.sh.
# Needs carry [".whl", ".peer"] (.peer/: the mamba_ssm sdist, see BENCHMARKS.md "Against mamba_ssm").
set -u
RES=${RES:-/tmp/res}; mkdir -p "$RES"
NCPU=$(nproc)
TS() { if command -v taskset > /dev/null; then taskset -c "$@"; else shift; "$@"; fi; }
if ls .peer/mamba_ssm-*.tar.gz > /dev/null 2>&1; then
  cp .peer/mamba_ssm-*.tar.gz /tmp/
  (MAX_JOBS=$(( NCPU - 4 )) TS 4-$(( NCPU - 1 )) nice -n 19 python3 -m audiomamba.bench.peer build \
     --sdist /tmp/mamba_ssm-*.tar.gz --out /tmp/peer-build > "$RES/peer-build.log" 2>&1
   echo "peer build rc=$? $(date -u +%T)") &
fi
run() {  # run NAME COMMAND...: log to $RES/NAME.log, say when it ends
  echo "PHASE $1 $(date -u +%T)"
  local name=$1; shift
  TS 0-3 "$@" > "$RES/$name.log" 2>&1
  echo "$name rc=$? $(date -u +%T)"
}
B="python3 -m audiomamba bench"
# while the peer builds on the other cores: the kernels' GPU tests (the backward without lane flips, ALIGN and exp2
# are new since the last GPU test run), then the quick sweeps
run gpu-tests python3 -m pytest -q -p no:cacheprovider tests/test_kernels_gpu.py tests/test_generate_gpu.py
# the scan kernels' ALIGN promise (L = 1000, sc09's 1 kHz level, and the other quick shapes), fwd+bwd and forward alone
run align-bwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_ALIGN 0,1 --backward --quick
run align-fwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_ALIGN 0,1 --quick
# the state loop's chunk without the lane flips: 8 steps per lane (256) halve the scans' cross-lane share per step
# (SASS, fp32: 317 instructions per state and chunk of 128, 58 of them shuffles); with the flips 256 lost (0.83-0.93x)
run loop-chunk python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_LOOP 128,256 --backward --quick
# the scan against the peer with the new sequential-forward tiles (kernels.tuning.SEQ_TILE_AUTO), exp2, ALIGN and the
# backward without lane flips (2026-12-03), all shapes including the U-Net levels, then the step with them
while pgrep -f "bench.peer build" > /dev/null; do sleep 5; done
[ -d /tmp/peer-build ] && run peer $B kernel --peer mamba_ssm --peer-build /tmp/peer-build --out "$RES/bench-kernel-peer.md"
run step $B model --compile --baseline AUDIOMAMBA_SCAN_BWD_LOOP=0,AUDIOMAMBA_FUSED_CONV=0 --out "$RES/bench-model.md"
# (the step against the baseline with its loss check, the GPU tests and the one-stream PDL/tail rows ran on
# 2026-12-03 16:54-17:19 UTC: BENCHMARKS.md)
# Δ, B, C time-contiguous (no copies in the scan's backward) against the default layout, same run
run xproj-layout env AUDIOMAMBA_XPROJ_LAYOUT=time $B model --compile --baseline AUDIOMAMBA_XPROJ_LAYOUT=channels \
  --out "$RES/bench-model-xproj-time.md"
# the conv's split backward against the default in the step (the kernel table ran 2026-12-03: BENCHMARKS.md)
run conv-split-step env AUDIOMAMBA_CONV_BWD=split $B model --compile --baseline AUDIOMAMBA_CONV_BWD=recompute \
  --out "$RES/bench-model-conv-split.md"
# batch 2048 with bf16 tiles and PDL (now the default for one stream), with the token checks
run generate-bf16 $B generate --cases sc09 --step-precisions bf16 --pdl --out "$RES/bench-generate-bf16.md"
run step-cudagraphs $B model --compile --compile-mode reduce-overhead --out "$RES/bench-model-reduce-overhead.md"
run step-profile $B model --profile --compile --out "$RES/bench-model-profile.md"
run generate-matrix $B generate --matrix --out "$RES/bench-generate-matrix.md"
echo "PHASE done $(date -u +%T)"
