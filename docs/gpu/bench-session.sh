#!/bin/bash
# One device session of benchmarks, in priority order (issues 14 and 18); each writes its report to $RES
# as soon as it ends, so a session cut short keeps what finished. Poll with docs/gpu/poll.sh.
# Needs carry [".whl", ".peer"] (.peer/: the mamba_ssm sdist, see BENCHMARKS.md "Against mamba_ssm").
# ONLY="gpu-tests peer ...": run only the named phases (a session split in two; empty: all; the peer is built only
# when ONLY names a peer phase or is empty). PEER_BUILD: where the build goes, or an existing build to use (no rebuild).
set -u
RES=${RES:-/tmp/res}; mkdir -p "$RES"
ONLY=${ONLY:-}
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
PEER_BUILD=${PEER_BUILD:-/tmp/peer-build}
NCPU=$(nproc)
W=${W:-/tmp/w}
. docs/gpu/loso-start.sh  # TS (core pinning), start_loso
if { want peer || want peer-lti || want peer-graph || want peer-graph-cap || want ncu-bwd; } && [ ! -d "$PEER_BUILD" ] && ls .peer/mamba_ssm-*.tar.gz > /dev/null 2>&1; then
  cp .peer/mamba_ssm-*.tar.gz /tmp/
  (MAX_JOBS=$(( NCPU - 4 )) TS 4-$(( NCPU - 1 )) nice -n 19 python3 -m audiomamba.bench.peer build \
     --sdist /tmp/mamba_ssm-*.tar.gz --out "$PEER_BUILD" > "$RES/peer-build.log" 2>&1
   echo "peer build rc=$? $(date -u +%T)") &
fi
run() {  # run NAME COMMAND...: log to $RES/NAME.log, say when it ends
  want "$1" || return 0
  echo "PHASE $1 $(date -u +%T)"
  local name=$1; shift
  TS 0-3 "$@" > "$RES/$name.log" 2>&1
  echo "$name rc=$? $(date -u +%T)"
}
B="python3 -m audiomamba bench"
# issue 17 (first: its runs load the GPU, so the timed phases wait for it): leave-one-speaker-out configurations on
# the GPU, one line of $LOSO_CFG each (NAME ARGS...), all at once, 5 folds per configuration (--jobs 5, 1 CPU thread per fold for the clips and augmentation, pinned to 5 cores);
# needs carry ".data/sc09-fsdd-flac.tar.xz"; the folders (without fold weights) come back in poll.sh's loso-partial.tgz
if want loso-gpu; then
  echo "PHASE loso-gpu $(date -u +%T)"
  mkdir -p "$W"
  [ -d "$W/sc09-fsdd" ] || python3 docs/gpu/flac_data.py unpack .data/sc09-fsdd-flac.tar.xz "$W"
  start_loso "${LOSO_CFG:-docs/gpu/loso-gpu.cfg}" cuda 0 $(( NCPU - 4 )) 0
  core=$LOSO_NEXT_CORE
  # classifiers on all five speakers (one line of $TRAIN_CFG each: NAME ARGS...), the candidates to ship, at the same
  # time; the weights come back in poll.sh's weights.tgz
  if [ -f "${TRAIN_CFG:-docs/gpu/train-gpu.cfg}" ]; then
    cp "${TRAIN_CFG:-docs/gpu/train-gpu.cfg}" /tmp/train-gpu.cfg
    while read -r name args; do
      (TS $core-$(( core + 1 )) python3 -m audiomamba evaluate train-classifier "$W/sc09-fsdd" --out "$RES/$name.pt" \
         --threads 1 --device cuda $args > "$RES/train-$name.log" 2>&1; echo "train $name rc=$? $(date -u +%T)") &
      core=$(( (core + 2) % (NCPU - 4) ))
    done < /tmp/train-gpu.cfg
  fi
  wait  # (the peer build too, which ends first)
  echo "loso-gpu done $(date -u +%T)"
fi
# while the peer builds on the other cores: the kernels' GPU tests (the backward without lane flips, ALIGN and exp2
# are new since the last GPU test run), then the quick sweeps
run gpu-tests python3 -m pytest -q -p no:cacheprovider tests/test_kernels_gpu.py tests/test_generate_gpu.py
# the scan kernels' GPU tests alone (a session that changed no generation kernel)
run kernel-tests python3 -m pytest -q -p no:cacheprovider tests/test_kernels_gpu.py \
  tests/test_kernels_bench.py::test_cuda_graphed_fwd_bwd_replays_the_scan
# (the chain of programs, one per block, AUDIOMAMBA_STEP_RUNS=chain: timed on one H100 2026-12-05 12:35 UTC, 0.92x /
# 0.76x / 0.39x the default for sc09-small mamba-s6 / mamba-s4-real / mamba-s4, then removed; commit fc4f94e has it)
# (a batch's in_proj as one cuBLAS product with the LayerNorm folded into the weights, AUDIOMAMBA_STEP_IN=cublas and
# cublas-tf32: timed on one H100 2026-12-05 14:45 UTC, 0.81x / 0.87x the default for sc09-small mamba-s6 at batch 2048,
# 0.79x / 0.87x mamba-s4-real, then removed; commit 889d058 has it)
# (issue 18's 10 s, new 2026-12-05 14:40) the sampling's start-up at batch 2048 (the matrix of 09:12 UTC: 14.61 s of
# sampling against 16 000 x 0.783 ms = 12.5 s steady): its parts (states, warm-up, capture) in the notes, with the
# warm-up over every row group (as before) and over one group of each size (the default now)
run startup bash -c "for w in all distinct; do AUDIOMAMBA_STEP_WARMUP=\$w timeout 200 python3 -m audiomamba bench generate \
  --matrix --presets sc09-small --blocks mamba-s6 --batches 2048 --out $RES/bench-generate-startup-\$w.md; done"
# (issue 18, new 2026-12-05 18:00) sub-period CUDA graphs (AUDIOMAMBA_STEP_GRAPH=sub, the default: graphs of the outer
# pooling factor's steps, one per depth of the inner levels, instead of one graph of the whole period; youtubemix one
# stream captured 256 steps, 1.3 s of start-up on an H100 at 15:23): the GPU tests, the start-up of both (youtubemix
# one stream, sc09-small at 2048), the steady step of both, then the CLI matrix of the one-stream goal (every preset
# and block type) and the 10 s goal (sc09-small mamba-s6 at 2048)
run sub-tests python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py
run sub-startup bash -c "python3 -m audiomamba.bench.profile_startup --compare-launch 3 --compare-var AUDIOMAMBA_STEP_GRAPH \
  --compare-values 'period;sub' --preset youtubemix --batch 1 > $RES/startup-graph-ytm-1.md; \
  python3 -m audiomamba.bench.profile_startup --compare-launch 3 --compare-var AUDIOMAMBA_STEP_GRAPH \
  --compare-values 'period;sub' > $RES/startup-graph-2048.md"
run sub-steady bash -c "python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_GRAPH --configs period --rounds 3 \
  --preset youtubemix --batch 1 --steps 4096 --out $RES/step-graph-ytm-1.md; python3 -m audiomamba.bench.step_tiles \
  --var AUDIOMAMBA_STEP_GRAPH --configs period --rounds 3 --out $RES/step-graph-2048.md"
run sub-matrix bash -c "timeout 300 $B generate --matrix --presets sc09-small,sc09-large,youtubemix \
  --blocks mamba-s6,mamba-s4,mamba-s4-real --batches 1 --out $RES/bench-generate-matrix-one-stream.md; \
  timeout 200 $B generate --matrix --presets sc09-small --blocks mamba-s6 --batches 2048 \
  --out $RES/bench-generate-matrix-2048.md"
# (a whole block step as ONE kernel per row tile, AUDIOMAMBA_STEP_TILES=whole=1: timed on one H100 2026-12-06 05:26 UTC,
# 0.45-0.78x the four kernels for mamba-s6 and 0.85-0.87x for mamba-s4-real at batch 2048, then removed; commit
# 071ab9c has it)
run sink-tests python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py -k "written or sink or consistency"
# (no x_proj launch at batch 2048, x_inline=1 / x_fold=1: timed on one H100 2026-12-06 01:24-01:25 UTC, 0.57-0.80x and,
# under tf32, 0.84x / 0.96-0.99x the default, then removed; commit c334334 has them. Under tf32 the tiles H in one
# chunk at 8 warps 0.97x, 32 rows 0.77x, out_proj over 64 columns 1.00x: tf32 keeps the default tiles)
# then the CLI path at 2048, one process each, back to back (sc09-large's too: its goal is within 3x of the 10 s)
# (and the WAVs written while sampling against after it: AUDIOMAMBA_WRITE_AHEAD=0, new 2026-12-05 21:10)
# (uncapped: --max-seconds-per-case 40 samples all 16 000 steps, so the WAVs can be written while sampling)
run whole-matrix bash -c "M='$B generate --matrix --presets sc09-small --blocks mamba-s6 --batches 2048 \
  --max-seconds-per-case 40'; timeout 200 \$M --out $RES/bench-generate-matrix-2048-default.md; \
  AUDIOMAMBA_WRITE_AHEAD=0 timeout 200 \$M --out $RES/bench-generate-matrix-2048-after.md; \
  timeout 200 $B generate --matrix --presets sc09-large --blocks mamba-s6 --batches 2048 --max-seconds-per-case 60 \
  --out $RES/bench-generate-matrix-2048-large.md"
# (issue 18, new 2026-12-06 06:10; timed on one H100 08:05: 1.08-1.09x per step at 2048, 1.21-1.25x for one stream,
# the default on a GPU since) the inner levels of the U-Net on side streams
# (AUDIOMAMBA_STEP_OVERLAP=1): a level's inner output is first read one step after it is made, so the inner levels'
# blocks can run beside the outer level's up blocks (and, within a graph, the next step's down blocks); by the
# profile the step is one row group's chain of dependent launches (82 per step, 9.2 us each), and this takes the
# inner levels' 4.5 of its 20.5 block steps off that chain. With it the sub-period graphs start at the step where the
# outer level's inner level runs (graph_schedule), so each fork is joined inside its graph a step later; whole-period
# graphs keep 3 of 4 overlaps whole.
# Its GPU tests first, then the steady step with and without, each graph mode, batch 2048 and one stream, then the
# CLI at 2048
run overlap-tests python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py -k "side_streams"
run overlap bash -c "for g in sub period; do for b in 2048 1; do AUDIOMAMBA_STEP_GRAPH=\$g timeout 200 python3 -m \
  audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_OVERLAP --configs 1 --batch \$b --rounds 3 \
  --steps \$([ \$b = 1 ] && echo 2048 || echo 512) --out $RES/step-overlap-\$g-\$b.md; done; done; \
  M='$B generate --matrix --presets sc09-small --blocks mamba-s6 --batches 2048 --max-seconds-per-case 40'; \
  timeout 200 \$M --out $RES/bench-generate-matrix-2048-base.md; \
  AUDIOMAMBA_STEP_OVERLAP=1 timeout 200 \$M --out $RES/bench-generate-matrix-2048-overlap.md; \
  AUDIOMAMBA_STEP_OVERLAP=1 AUDIOMAMBA_STEP_GRAPH=period timeout 200 \$M --out $RES/bench-generate-matrix-2048-overlap-period.md"
# (issue 18, 2026-12-06 08:05 UTC on one H100: overlap 1.08-1.09x per step at 2048, 1.21-1.25x for one stream, logits
# unchanged; CLI 13.47 -> 13.07 s (sub graphs) / 12.76 s (period graphs); the default on a GPU since) every GPU
# generation test with it on, then the other presets and block types against AUDIOMAMBA_STEP_OVERLAP=0, the row
# groups again with it, and the goal rows' matrices (one stream: every preset and block type; 2048: sc09-small/large)
run overlap-gpu-tests python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py
run overlap-wide bash -c "S='python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_OVERLAP --configs 0 --rounds 3'; \
  for b in 2048 1; do n=\$([ \$b = 1 ] && echo 2048 || echo 512); \
  timeout 200 \$S --preset sc09-large --batch \$b --steps \$n --out $RES/step-overlap-large-\$b.md; \
  for k in mamba-s4 mamba-s4-real; do timeout 200 \$S --block \$k --batch \$b --steps \$n \
  --out $RES/step-overlap-small-\$k-\$b.md; done; done; \
  timeout 200 python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_GROUPS --configs '4;16' --rounds 3 --steps 512 \
  --out $RES/step-overlap-groups.md; \
  timeout 300 $B generate --matrix --presets sc09-small,sc09-large,youtubemix --blocks mamba-s6,mamba-s4,mamba-s4-real \
  --batches 1 --out $RES/bench-generate-matrix-1-overlap.md; \
  timeout 200 $B generate --matrix --presets sc09-small --blocks mamba-s6 --batches 2048 --max-seconds-per-case 40 \
  --out $RES/bench-generate-matrix-2048-overlap2.md; \
  timeout 200 $B generate --matrix --presets sc09-large --blocks mamba-s6 --batches 2048 --max-seconds-per-case 60 \
  --out $RES/bench-generate-matrix-2048-large-overlap.md"
# (issue 18, 2026-12-06 08:13 UTC on one H100: with the overlap, 16 row groups 0.43x and 4 groups 0.98x per step) is it
# the hardware queues now? 8 groups x 3 streams share CUDA_DEVICE_MAX_CONNECTIONS (8) queues, 16 groups 48 streams; a
# side stream's wait can stall a main stream behind it in one queue. Groups 6/12/16 with 8 and 32 queues, and
# sc09-large's graph modes and groups with the overlap
run overlap-queues bash -c "S='python3 -m audiomamba.bench.step_tiles --rounds 3 --steps 512'; \
  timeout 200 \$S --var AUDIOMAMBA_STEP_GROUPS --configs '6;12;16' --out $RES/step-overlap-groups-q8.md; \
  CUDA_DEVICE_MAX_CONNECTIONS=32 timeout 200 \$S --var AUDIOMAMBA_STEP_GROUPS --configs '6;12;16' \
  --out $RES/step-overlap-groups-q32.md; \
  CUDA_DEVICE_MAX_CONNECTIONS=32 timeout 200 \$S --var AUDIOMAMBA_STEP_OVERLAP --configs '0' \
  --out $RES/step-overlap-q32.md; \
  timeout 200 \$S --preset sc09-large --steps 256 --var AUDIOMAMBA_STEP_GRAPH --configs period \
  --out $RES/step-overlap-large-period.md; \
  CUDA_DEVICE_MAX_CONNECTIONS=32 timeout 200 \$S --preset sc09-large --steps 256 --var AUDIOMAMBA_STEP_GROUPS \
  --configs '12;16' --out $RES/step-overlap-large-groups-q32.md"
# (issue 18, 2026-12-06 08:18 UTC on one H100: 32 hardware queues change nothing, 12 / 16 groups with the overlap
# 0.75x / 0.43x, sc09-large's period graphs 1.00x) fewer side streams: only the outermost level forks
# (AUDIOMAMBA_STEP_OVERLAP=outer: 2 streams per row group, not 3), at 8 and 16 groups, sc09-small and sc09-large
run overlap-outer bash -c "S='python3 -m audiomamba.bench.step_tiles --rounds 3 --var AUDIOMAMBA_STEP_OVERLAP'; \
  timeout 200 \$S --configs 'outer;0' --out $RES/step-overlap-outer.md; \
  AUDIOMAMBA_STEP_GROUPS=16 timeout 200 \$S --configs 'outer;0' --out $RES/step-overlap-outer-g16.md; \
  timeout 200 \$S --configs 'outer' --batch 1 --steps 2048 --out $RES/step-overlap-outer-1.md; \
  timeout 200 \$S --preset sc09-large --steps 256 --configs 'outer' --out $RES/step-overlap-outer-large.md"
# (issue 18, 2026-12-06 08:21 UTC on one H100: 16 groups with only the outermost level forking 0.673 ms per step
# against 1.569 with all levels and 0.682 for the default 8 groups; so beyond 32 streams the overlap forks fewer
# levels, OVERLAP_MAX_STREAMS) the side-stream GPU tests, 12 and 16 groups under that rule, then the goal rows' CLI
# runs three times each (sc09-small and sc09-large at 2048), for their medians
run goal-tests python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py -k "side_streams"
run goal-groups timeout 200 python3 -m audiomamba.bench.step_tiles --rounds 3 --var AUDIOMAMBA_STEP_GROUPS \
  --configs '12;16' --out $RES/step-overlap-groups-capped.md
run goal-runs bash -c "for i in 1 2 3; do \
  timeout 200 $B generate --matrix --presets sc09-small --blocks mamba-s6 --batches 2048 --max-seconds-per-case 40 \
  --out $RES/bench-generate-matrix-2048-goal-\$i.md; \
  timeout 200 $B generate --matrix --presets sc09-large --blocks mamba-s6 --batches 2048 --max-seconds-per-case 60 \
  --out $RES/bench-generate-matrix-2048-large-goal-\$i.md; done"
# (issue 18, new 2026-12-06 11:10, built on the CPU machine) the head, the token draw and the next input's embedding in
# one launch per step (AUDIOMAMBA_STEP_HEAD, default on; 0: three launches): its GPU tests, then the steady step with
# and without, one stream per preset and block type and batch 2048 for sc09-small and sc09-large
run head-tests bash -c "python3 -m pytest -q -p no:cacheprovider tests/test_fused_step.py \
  -k 'head or three_launches or fused_kernels_is_exact or sampling_kernel'"
run head bash -c "S='python3 -m audiomamba.bench.step_tiles --batch 1 --steps 2048 --rounds 3 --var AUDIOMAMBA_STEP_HEAD \
  --configs 0'; for p in sc09-small sc09-large youtubemix; do for k in mamba-s6 mamba-s4 mamba-s4-real; do \
  timeout 200 \$S --preset \$p --block \$k --out $RES/step-head-\$p-\$k.md; done; done"
run head-batch bash -c "S='python3 -m audiomamba.bench.step_tiles --rounds 3 --var AUDIOMAMBA_STEP_HEAD --configs 0'; \
  timeout 200 \$S --out $RES/step-head-2048.md; \
  timeout 200 \$S --preset sc09-large --steps 256 --out $RES/step-head-large-2048.md"
run head-matrix timeout 300 $B generate --matrix --presets sc09-small,sc09-large,youtubemix \
  --blocks mamba-s6,mamba-s4,mamba-s4-real --batches 1 --out $RES/bench-generate-matrix-1-head.md
run gpu-tests-generate python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py
# (issue 18, 2026-12-06 11:45) a fused block step's launches recorded once and replayed (AUDIOMAMBA_STEP_REPLAY, on by
# default; 0: every launch through launch_named): the GPU tests with it, the start-up with and without (sc09-large and
# sc09-small at 2048), then the goal runs (one H100 13:44-13:52 UTC: 115 tests passed; start-up 0.597 -> 0.388 s
# for sc09-large, 0.336 -> 0.227 s for sc09-small)
run replay-tests bash -c "python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py tests/test_fused_step.py"
run replay bash -c "P='python3 -m audiomamba.bench.profile_startup --batch 2048 --compare-launch 3 \
  --compare-var AUDIOMAMBA_STEP_REPLAY --compare-values 0;1'; timeout 250 \$P --preset sc09-large \
  > $RES/startup-replay-large.md; timeout 200 \$P --preset sc09-small > $RES/startup-replay-small.md"
# (issue 18, new 2026-12-06 14:00, built on the CPU machine) the rest outside sampling: the noise judged from the tokens
# on a thread started first (beside the decoding), the index's rows and JSON through faster paths, the weights file
# mapped and the model built on the device: the GPU tests of the files phase, then the goal runs (goal-runs) and
# one stream with every preset and block type
run rest-tests python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py -k "noise or wavs or sink or host"
run rest-matrix-1 timeout 300 $B generate --matrix --presets sc09-small,sc09-large,youtubemix \
  --blocks mamba-s6,mamba-s4,mamba-s4-real --batches 1 --out $RES/bench-generate-matrix-1-rest.md
# (issue 18, built 2026-12-08 01:30-01:55 on the CPU machine, no device lent) checkpoints packed into one buffer
# (format 2): where loading a run onto the GPU goes, the two formats side by side, per preset (the matrix's loading
# column was 0.15-0.29 s for sc09-small against youtubemix's 0.04 s on 2026-12-07)
run profile-load bash -c "for p in sc09-small youtubemix sc09-large; do \
  timeout 200 python3 -m audiomamba.bench.profile_load --preset \$p --block mamba-s4-real --rounds 5 --top 30 \
  > $RES/profile-load-\$p.md; done"
# (issue 18, 2026-12-06 14:17) the pinned host buffers allocated on a thread while sampling, with 16 row groups
# interleaved: one H100 14:18-14:22 UTC, sc09-large 30.14 / 30.19 / 30.43 s by the wall (sampling 29.50-29.59, as
# without the buffers: removed), 16 groups 30.64 / 30.64 s (steady 1.004x, capture 0.35 -> 0.68 s: 8 stay)
run pinned-goal bash -c "L='$B generate --matrix --presets sc09-large --blocks mamba-s6 --batches 2048 \
  --max-seconds-per-case 60'; S='$B generate --matrix --presets sc09-small --blocks mamba-s6 --batches 2048 \
  --max-seconds-per-case 40'; for i in 1 2; do timeout 200 \$L --out $RES/bench-generate-matrix-2048-large-pinned-\$i.md; \
  AUDIOMAMBA_STEP_GROUPS=16 timeout 200 \$L --out $RES/bench-generate-matrix-2048-large-groups16-\$i.md; \
  timeout 200 \$S --out $RES/bench-generate-matrix-2048-pinned-\$i.md; done; \
  timeout 200 \$L --out $RES/bench-generate-matrix-2048-large-pinned-3.md; \
  AUDIOMAMBA_STEP_GROUPS=16 timeout 200 \$S --out $RES/bench-generate-matrix-2048-groups16.md"
# (issue 18) a generation's last step as the next span's graph replay, its surplus steps dropped
# (AUDIOMAMBA_STEP_TAIL=graph): timed on one H100 2026-12-06 17:30-17:35 UTC, 1.00x by the wall (sc09-large 30.24 s
# median against 30.28, sc09-small 11.84 against 11.87), removed (commit e5d4ba1 has it; these phases need it)
run tail-tests python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py -k "sub_period"
run tail-goal bash -c "L='$B generate --matrix --presets sc09-large --blocks mamba-s6 --batches 2048 \
  --max-seconds-per-case 60'; S='$B generate --matrix --presets sc09-small --blocks mamba-s6 --batches 2048 \
  --max-seconds-per-case 40'; for i in 1 2 3; do timeout 200 \$L --out $RES/bench-generate-matrix-2048-large-eager-\$i.md; \
  AUDIOMAMBA_STEP_TAIL=graph timeout 200 \$L --out $RES/bench-generate-matrix-2048-large-tail-\$i.md; done; \
  for i in 1 2; do timeout 200 \$S --out $RES/bench-generate-matrix-2048-eager-\$i.md; \
  AUDIOMAMBA_STEP_TAIL=graph timeout 200 \$S --out $RES/bench-generate-matrix-2048-tail-\$i.md; done"
# (issue 18) sc09-large's best tiles combined through the CLI, interleaved, three each: timed on one H100 2026-12-06
# 17:35-17:38 UTC, 29.91 s against 30.13 s by the wall (its <= 30 s met), now its widths' default (TILES_BY_WIDTH), so
# the default runs here now take them too
run large-tiles-goal bash -c "L='$B generate --matrix --presets sc09-large --blocks mamba-s6 --batches 2048 \
  --max-seconds-per-case 60'; for i in 1 2 3; do timeout 200 \$L --out $RES/bench-generate-matrix-2048-large-tiles-default-\$i.md; \
  AUDIOMAMBA_STEP_TILES=out_h=64,x_rows=32 timeout 200 \$L --out $RES/bench-generate-matrix-2048-large-tiles-out64-\$i.md; done"
# (issue 18) both of the above together on sc09-large, three runs: timed on one H100 2026-12-06 17:39-17:40 UTC,
# 29.93 s median, the tail adding nothing (AUDIOMAMBA_STEP_TAIL is read by nothing since its removal)
run combo-goal bash -c "L='$B generate --matrix --presets sc09-large --blocks mamba-s6 --batches 2048 \
  --max-seconds-per-case 60'; for i in 1 2 3; do AUDIOMAMBA_STEP_TAIL=graph AUDIOMAMBA_STEP_TILES=out_h=64,x_rows=32 \
  timeout 200 \$L --out $RES/bench-generate-matrix-2048-large-combo-\$i.md; done"
# (issue 18) where the start-up's Python goes now that block steps replay their launches (cProfile of the capture and
# first period; run on one H100 2026-12-06 17:41 UTC, results/profile-startup-replay-large-h100-2026-12-06-1741.txt)
run startup-prof bash -c "python3 -m audiomamba.bench.profile_startup --preset sc09-large --batch 2048 --top 40 \
  > $RES/profile-startup-replay-large.log 2>&1"
# (issue 18) each Mamba block's out_proj folded into the next block's first launch (AUDIOMAMBA_STEP_FOLD): timed on
# one H100 2026-12-06 10:46-10:50 UTC, 0.82-0.92x for one stream and 0.88-0.91x at 2048, removed (commit 9c652a1 has it)
# (issue 18, new 2026-12-06) 16 row groups through the CLI, beside the default 8: 1.02x per steady step (H100 03:52),
# but the graph's capture records every group's launches (0.35 s for 8), so only the wall can say whether 16 pay
# (timed on one H100 2026-12-06 05:26-05:27 UTC: 13.35 s against 13.39 s by the wall, 1.00x: capture 0.55 s against 0.27
# ate the steady step's gain; 8 stays the default)
run groups-cli bash -c "M='$B generate --matrix --presets sc09-small --blocks mamba-s6 --batches 2048 \
  --max-seconds-per-case 40'; timeout 200 \$M --out $RES/bench-generate-matrix-2048-groups8.md; \
  AUDIOMAMBA_STEP_GROUPS=16 timeout 200 \$M --out $RES/bench-generate-matrix-2048-groups16.md"
# (issue 18, new 2026-12-05 21:00) bf16 tiles on top of today's fp16 states at 2048 (1.06x with fp32 states, H100 09:24,
# within the likelihood check; overfit's table now has step_fused_bf16_tiles_fp16_states): the steady step and the CLI
# (and one TF32 product per tile instead of three, `tf32`, new 2026-12-05 23:20; overfit's table has
# step_fused_tf32_tiles_fp16_states. Timed on one H100 2026-12-06 01:25 UTC: bf16 and tf32 both 1.06x per step, logits
# 2.6e-3 / 7.7e-4 off the default's; the CLI with bf16 tiles 13.36 s by the wall; the likelihood check passed at
# 03:59, tf32 the default since)
run tiles-bf16 bash -c "python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_PRECISION --configs 'bf16;tf32' --rounds 3 \
  --out $RES/step-prec-bf16-fp16-states.md; AUDIOMAMBA_STEP_PRECISION=bf16 timeout 200 $B generate --matrix \
  --presets sc09-small --blocks mamba-s6 --batches 2048 --max-seconds-per-case 40 \
  --out $RES/bench-generate-matrix-2048-bf16-tiles.md"
# (issue 18, new 2026-12-05 18:05) the files phase at batch 2048: the grid's figure built ahead against at the end
# (H100 18:04: 1.92 against 2.17 s), and the WAV writers on this machine's disk
run files-phase bash -c "python3 -m audiomamba.bench.files_phase grid > $RES/files-phase-grid.md; \
  python3 -m audiomamba.bench.files_phase wavs > $RES/files-phase-wavs.md"
# (issue 18, new 2026-12-05 15:30) the start-up with Triton's launch and the direct one (launch_named; H100 15:22:
# 1.48 -> 1.06 s at batch 2048, before the plain-Python grid arithmetic), batch 2048 and one youtubemix stream; then
# the CLI matrix of the 10 s goal and the one-stream goal in one run
run startup-launch bash -c "python3 -m audiomamba.bench.profile_startup --compare-launch 3 > $RES/startup-launch-2048.md; \
  python3 -m audiomamba.bench.profile_startup --compare-launch 3 --preset youtubemix --batch 1 > $RES/startup-launch-ytm-1.md; \
  timeout 400 python3 -m audiomamba bench generate --matrix --presets sc09-small,youtubemix --blocks mamba-s6,mamba-s4-real \
  --batches 2048,1 --out $RES/bench-generate-matrix-startup.md"
# the batch-2048 generation step's levers of 2026-12-05 (issue 18's 10 s), first: a session may end early
# the in_proj + conv with all H columns in one chunk (new 2026-12-05 07:00: x loaded once, the LayerNorm in registers;
# sm_90: 8 warps 132 registers and 784 instructions against the default's 235 and 1408) and the x_proj's three
# outputs in three programs (x_split=1, 07:10: 128 registers and 704 instructions against 255 and 1344), and register
# caps of 128 (in_maxnreg: two 8-warp programs per SM instead of one, 8 B of spills),
# batch 2048 with groups; step_tiles then times the per-kernel winners combined against the default
run in-one python3 -m audiomamba.bench.step_tiles --rounds 4 --out "$RES/step-tiles-in-one.md" \
  --configs "in_h=64;in_h=64,in_warps=8;in_h=64,in_warps=8,in_maxnreg=128;in_h=64,in_e=32;in_h=64,in_e=32,in_maxnreg=128;in_h=64,in_e=128,in_warps=8;x_split=1;x_split=1,x_warps=2"
# bf16 step states (new 2026-12-05 07:40: conv windows and real SSM states stored in bfloat16, half of a batch-2048
# step's ~1 GB of state traffic): the GPU tests, then the steady step against float32 states at batch 2048 (with the
# groups) and one stream, sc09-small mamba-s6 and mamba-s4-real; the likelihood check is in the overfit phase
run states-tests python3 -m pytest -q -p no:cacheprovider tests/test_fused_step.py tests/test_kernels_run.py \
  tests/test_generate_gpu.py -k "bf16 or faster"
# (fp16 states, new 2026-12-05 10:20: bf16 states failed the likelihood check on the H100, fp16 rounds 8x finer)
run states-step bash -c "python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_STATES --configs 'bf16;fp16' \
  --rounds 4 --out $RES/step-states-2048.md; python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_STATES --configs bf16 \
  --rounds 4 --block mamba-s4-real --out $RES/step-states-2048-s4-real.md; python3 -m audiomamba.bench.step_tiles \
  --var AUDIOMAMBA_STEP_STATES --configs bf16 --rounds 4 --batch 1 --steps 2048 --out $RES/step-states-1.md"
run matrix-states env AUDIOMAMBA_STEP_STATES=bf16 timeout 300 $B generate --matrix --presets sc09-small \
  --blocks mamba-s6,mamba-s4-real --batches 2048,1 --out "$RES/bench-generate-matrix-states.md"
# the CLI path at batch 2048 with what the phases above found: in-one's combined tiles (when they beat the default)
# and bf16 states (when states-step found them faster), for the 10 s goal in one run
if want matrix-best; then
  best_tiles=$(grep -o 'Best per kernel, combined: `[^`]*`' "$RES/step-tiles-in-one.md" 2>/dev/null | cut -d'`' -f2)
  states_x=$(grep -o '^| `bf16` | – | [0-9.]* | [0-9.]*×' "$RES/step-states-2048.md" 2>/dev/null | awk '{print $(NF)}' | tr -d '×')
  best_states=$(awk -v x="${states_x:-0}" 'BEGIN { print (x > 1.0) ? "bf16" : "fp32" }')
  echo "matrix-best: AUDIOMAMBA_STEP_TILES='$best_tiles' AUDIOMAMBA_STEP_STATES=$best_states (states-step: ${states_x:-none}x)"
fi
run matrix-best env AUDIOMAMBA_STEP_TILES="${best_tiles:-}" AUDIOMAMBA_STEP_STATES="${best_states:-fp32}" timeout 300 \
  $B generate --matrix --presets sc09-small --blocks mamba-s6,mamba-s4-real --batches 2048 \
  --out "$RES/bench-generate-matrix-best.md"
# (one stream's kernels in one layout, AUDIOMAMBA_STEP_FLAT: timed 2026-12-05 on an H100, 0.93-1.02x, removed)
# the likelihood check of the faster step settings on trained weights: the overfit proof (sc09-overfit, ~4 min of
# training on an H200 on 2026-12-02) now also teacher-forces its clips through step mode with bf16 states, bf16 tiles
# and both ("step_fused_bf16_*" in overfit.json's consistency table, judged by the same 0.02 BPB / 0.05 nats limits);
# needs carry ".data"
# (the whole archive no longer fits beside the tracked tree: carry ".data/sc09-george-flac.tar.xz", one speaker's
# clips, docs/gpu/flac_data.py --speaker; 2026-12-05)
if want overfit; then
  mkdir -p "$W"
  arch=$(ls .data/sc09-fsdd-flac.tar.xz .data/sc09-george-flac.tar.xz 2>/dev/null | head -1)
  [ -d "$W/sc09-fsdd" ] || python3 docs/gpu/flac_data.py unpack "$arch" "$W"
fi
run overfit bash -c "timeout 560 python3 -m audiomamba evaluate overfit --data $W/sc09-fsdd --out /tmp/overfit \
  --classifier eval/weights/sc09-fsdd-classifier.pt --n 256; cp /tmp/overfit/overfit.json $RES/overfit-states.json"
# the Python side of a short-L scan call with Triton's launch path and with the direct one (kernels/launch.py)
run launch-triton env AUDIOMAMBA_FAST_LAUNCH=0 python3 -m audiomamba.bench.profile_scan --cpu 7
run launch-direct env AUDIOMAMBA_FAST_LAUNCH=1 python3 -m audiomamba.bench.profile_scan --cpu 7
# the scan kernels' ALIGN promise (L = 1000, sc09's 1 kHz level, and the other quick shapes), fwd+bwd and forward alone
run align-bwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_ALIGN default,0 --backward --quick
run align-fwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_ALIGN default,0 --quick
# the state loop's chunk without the lane flips: 8 steps per lane (256) halve the scans' cross-lane share per step
# (SASS, fp32: 317 instructions per state and chunk of 128, 58 of them shuffles); with the flips 256 lost (0.83-0.93x)
run loop-chunk python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_LOOP 128,256 --backward --quick
# software pipelining (tl.range num_stages, cp.async prefetch) of the state-loop backward's state loop and of the
# sequential forward's tile loop (2026-12-04)
run stages-bwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_STAGES 1,2,3 --backward --quick
# two states per iteration of the state loop (two scan chains for the scheduler; 2026-12-04, not yet timed)
run unroll-bwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_UNROLL_N 1,2 --backward --quick
run stages-fwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_FWD_STAGES 1,2 --quick
# the sequential forward with fewer channels per program (states split over 2 or 4 lanes: 248 -> 167 / 107 registers
# in the sm_90 PTX) and fewer segments: the short-L rows (16, 512, 16, 1000/1024) lose 0.4-0.7x to the peer
run fwd-blockd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_CONFIG \
  "default;32,16,1,1,1,256,seq,loop128;32,8,1,1,1,256,seq,loop128;32,16,1,1,1,512,seq,loop128;32,8,1,1,1,1024,seq,loop128" --quick
# complex LTI fwd+bwd (0.55-0.64x the peer): the tile backward against the state loop at 128 and 256, and pipelined
run complex-bwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_CONFIG \
  "default;32,32,1,1,1,256,seq,loop128;32,32,1,1,1,256,seq,loop256" --backward --complex --quick
run complex-stages env AUDIOMAMBA_SCAN_BWD_LOOP=128 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_STAGES 1,2 \
  --backward --complex --quick
# complex LTI fwd+bwd (0.76-0.93x the peer on 2026-12-04 16:10): the state loop's closed-form LTI scans against the
# associative scans (the default), then the closed form's chunk (2026-12-04 18:08: 1.00x fp32, 0.93-0.95x bf16; chunk
# 128 0.90-0.94x and 512 0.75-0.88x of 256), then a register cap (18:21: 128 0.91x, 168 0.79x: spills)
run closed-bwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_CLOSED default,1 --backward --complex
run closed-chunk env AUDIOMAMBA_SCAN_BWD_CLOSED=1 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_LOOP \
  default,128,512 --backward --complex
run maxnreg-bwd python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_MAXNREG default,128,168 --backward --complex
# issue 14 (2026-12-06 20:20 UTC, one H100): the selective real backward with 2 channels per program and its local pass
# along L lost (0.42-0.56x and 0.87-0.92x at L = 131072; BENCHMARKS.md "Two channels per backward program"; commit
# 42c8b39 has the kernels and these phases). The sweep of several variables at once, as it ran:
#   python3 -m audiomamba.bench.scan_env_sweep channels \
#     "default;AUDIOMAMBA_SCAN_BWD_CHANNELS=2+AUDIOMAMBA_SCAN_BWD_LOOP=64;..." --backward --selective
# next: real A's backward capped at 128 / 136 registers (168 uncapped: 12 one-warp programs per SM; 136 compiles
# without spills for 15, 128 with 16 B for 16; sm_90 compile on the CPU, never timed)
# and the next state's B, C and start state loaded one iteration ahead (AUDIOMAMBA_SCAN_BWD_PREFETCH: 182 registers, or
# capped at 168 for the 12 programs per SM of today). Ran 2026-12-06 21:48 (H200): caps 0.85-1.05x, prefetch 0.72-1.02x;
# the prefetch knob was removed after it (commit a986417 has it), the command kept as it ran
run bwd-cap-real timeout 500 python3 -m audiomamba.bench.scan_env_sweep cap-prefetch \
  "default;AUDIOMAMBA_SCAN_BWD_MAXNREG=128;AUDIOMAMBA_SCAN_BWD_MAXNREG=136;AUDIOMAMBA_SCAN_BWD_PREFETCH=1;\
AUDIOMAMBA_SCAN_BWD_PREFETCH=1+AUDIOMAMBA_SCAN_BWD_MAXNREG=168" --backward --selective
# (issue 14, 2026-12-06 21:51, H200: the ncu-bwd run found pass 1 (_scan_bwd_local_kernel) 4.54 ms of the 0.76x
# row's backward, the state loop 10.61 ms, the peer's whole backward 10.94) pass 1 as one sum per state: its GPU tests,
# the sweep (only L = 131072 runs a pass 1). One H100 2026-12-07 01:53 UTC: 1.18x / 1.27x (fp32 2 warps / bf16 4
# warps), the default since (`peer-graph` times it against the peer), so the sweep names the scan form by its 0
run local-sum-tests python3 -m pytest -q -p no:cacheprovider tests/test_kernels_gpu.py -k "pass1 or lane_flip"
# (the forward's pass 1 as one sum per state, the mirror of this, lost on one H100 2026-12-07 06:42: 0.79-0.88x,
# replayed 0.82x at the (16, 512, 16, 1024) bf16 row; its phases fwd-sum-tests fwd-sum peer-graph-fwd-sum and the
# kernel were removed)
run local-sum timeout 300 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_LOCAL_SUM 0,2,4 \
  --backward --selective
# (issue 14, 2026-12-07) the adjoint's flip by one inline shuffle per register (AUDIOMAMBA_SCAN_BWD_LANE_ASM, off since
# 2026-12-03: 1.02-1.16x then, within that day's noise, and unchecked on a GPU): the rows at 0.95-0.99x need ~5 %.
# One H100 2026-12-07 01:54 UTC: 1.00x (0.99-1.00x; 1.04 / 1.12x at one shape whose default moved 13 % between sweeps)
run lane-asm timeout 300 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_LANE_ASM default,1 \
  --backward --selective
# (issue 14, 2026-12-07) the forward's segment length at the short-L rows below the peer ((16, 512, 16, 1024) bf16
# fwd 0.93x at segments of 256; on 2026-12-05 512 was 1.06x at (8, 2048, 16, 2048) bf16 and 0.66x at L = 1024):
# segments of 64 and 128 (2 and 4 chunks; the pick stops at 8) and 512 against the pick, forward only. One H100
# 2026-12-07 01:54 UTC: 64 and 128 0.75-1.02x, 512 1.03x / 1.06x at (8, 2048, 16, 2048) (now picked there: L <= 4096)
run fwd-seg-short timeout 300 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_SEG_L default,64,128,512 --selective
# the selective bf16 rows below the peer (2026-12-05 04:27: 0.76x fwd+bwd at (8, 128, 16, 131072), 0.95x, 0.99x):
# the state-loop backward is latency-bound with 128 registers (16 one-warp programs per SM); chunks of 64 steps (80
# registers in the sm_90 compile check) and register caps of 96 / 128 give the SM more warps to switch between
run bwd-occupancy bash -c "python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_LOOP default,64 --backward; \
  python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_MAXNREG default,96 --backward"
# where the time goes, kernel by kernel, ours and the peer's (torch.profiler)
while want profile && pgrep -f "bench.peer build" > /dev/null; do sleep 5; done
run profile python3 -m audiomamba.bench.profile_scan --table --quick $([ -d "$PEER_BUILD" ] && echo --peer-build "$PEER_BUILD")
# the scan against the peer, same run, all shapes including the U-Net levels (2026-12-04: 20 of 32 rows >= 1.0x), then
# the step
while pgrep -f "bench.peer build" > /dev/null; do sleep 5; done
[ -d "$PEER_BUILD" ] && run peer $B kernel --peer mamba_ssm --peer-build "$PEER_BUILD" --out "$RES/bench-kernel-peer.md"
# (issue 14, 2026-12-07) the chunk-scan forward (a scan over (channels, L, N) tiles in one launch, no segments) at the
# short-L row the sequential forward loses (16, 512, 16, 1024) bf16 0.94x: four tile shapes against the default,
# forward only (every selective shape, as the config is one for all). One H100 2026-12-07 06:43: 0.18-0.49x
run fwd-chunk-scan timeout 240 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_CONFIG \
  "default;32,4,1,4,1,0,loop128;64,2,1,4,1,0,loop128;128,1,1,4,1,0,loop128;32,8,1,8,1,0,loop128" --selective --short
# (issue 14, 2026-12-07) the sequential forward with each channel's states over 2 or 4 lanes (16 or 8 channels per
# one-warp program), with and without segments, at the short-L shapes only: more warps per SM where 1024 one-warp
# programs leave the 0.94x row latency-bound (timed eager on 2026-12-04 only, where the host bound L = 1000). One H100
# 2026-12-07 06:44: 0.63-1.00x at the row; 16 channels in one segment 1.10x at (8, 2048, 16, 2048) only
run fwd-lanes timeout 240 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_CONFIG \
  "default;32,16,1,1,1,256,seq,loop128;32,16,1,1,1,0,seq,loop128;32,8,1,1,1,0,seq,loop128;32,8,1,1,1,512,seq,loop128" \
  --selective --short
# (issue 14, 2026-12-07) the segmented forward without a local pass (AUDIOMAMBA_SCAN_FWD_FIXUP=1|2: walks from zero,
# the carry, a parallel fix-up of the later segments): one H100 08:32 UTC, 0.43-0.94x the default at every selective
# shape (the fix-up pass 74 us at the row against its ~27 us exp2 floor, the walk from zero 93 us against 79),
# removed; B and C from float32 (batch, L, N) copies (AUDIOMAMBA_SCAN_FWD_BC_ROWS=1): 0.64-0.96x at 08:57, removed;
# the fast softplus and silu gate (AUDIOMAMBA_SCAN_FAST_GATES): 1.03-1.17x, now the default (with B/C loads unmasked
# where 16 steps divide L). Commit 854e65d's tree has the fix-up's phases. Here: the fast gates' GPU tests, the
# launch-config test (its base now the scan kernels), the forward with the gates and the unmasked loads (EVEN: in fp32
# 0.85x across two machines' runs, not side by side) each off, fwd+bwd with the gates off
run fast-gates-tests timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_kernels_gpu.py \
  -k "fast_gates or other_launch_configs"
run fast-gates timeout 240 python3 -m audiomamba.bench.scan_env_sweep combos "default;AUDIOMAMBA_SCAN_FAST_GATES=0;\
AUDIOMAMBA_SCAN_SEQ_EVEN=0;AUDIOMAMBA_SCAN_FAST_GATES=0+AUDIOMAMBA_SCAN_SEQ_EVEN=0" --selective
run fast-gates-bwd timeout 240 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_FAST_GATES default,0 \
  --backward --selective
# (issue 18, 2026-12-07) a run of blocks as ONE thread-block cluster (AUDIOMAMBA_STEP_RUNS=cluster: persistent, its
# programs meeting at the hardware cluster barrier instead of the grid's counter): the runs' GPU tests, then one
# sc09-small stream per block type against the grid-barrier and split runs. One H100 11:56-11:58 UTC (the commands run
# by hand): 18 passed; 1.01x / 1.11x / 1.07x (mamba-s6 / -s4-real / -s4), the LTI runs' default since
run runs-cluster-tests timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_kernels_run.py tests/test_generate_gpu.py \
  -k "cluster or block_runs_change_no_sample"
run runs-cluster bash -c "for k in mamba-s6 mamba-s4-real mamba-s4; do timeout 200 python3 -m audiomamba.bench.step_tiles \
  --var AUDIOMAMBA_STEP_RUNS --configs 'cluster;1;split' --batch 1 --steps 2048 --rounds 3 --block \$k \
  --out $RES/runs-cluster-\$k.md; done"
# (issue 18, 2026-12-07 afternoon) clusters past the portable 8 CTAs (up to 16, kernels.launch.allow_cluster): the
# default (auto) launches runs of 9-16 programs as one cluster too (sc09-large's 16 kHz level, 12 programs;
# sc09-small's 4 kHz level, 16): the non-portable cluster tests, then the default against split runs per preset and
# LTI block type, and mamba-s6 runs against the per-block launches. One H100 14:41-14:53 UTC (the first run of the
# tests failed on a CUDA function handle not yet loaded, fixed in allow_cluster; then 26 passed): against split
# 1.13x / 1.09x (sc09-small s4-real / s4), 1.08x / 1.04x (sc09-large), 1.13x / 1.07x (youtubemix); mamba-s6 runs
# (default since, one warp at 64 columns or fewer) 1.09x / 1.06x / 1.09x the per-block launches. 32 channels per
# program (sc09-large: 6 / 12 / 24 programs per level) ran 0.73x, so 16 stay.
run runs16-tests timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_kernels_run.py tests/test_generate_gpu.py \
  -k "cluster or block_runs_change_no_sample"
ST="timeout 200 python3 -m audiomamba.bench.step_tiles --batch 1 --steps 2048 --rounds 3"
run runs16 bash -c "for p in sc09-large sc09-small youtubemix; do for k in mamba-s4-real mamba-s4; do $ST --preset \$p \
  --block \$k --var AUDIOMAMBA_STEP_RUNS --configs split --out $RES/runs16-\$p-\$k.md; done; \
  $ST --preset \$p --block mamba-s6 --var AUDIOMAMBA_STEP_RUNS --configs '0;cluster' --out $RES/runs16-\$p-mamba-s6.md; done"
run runs16-width bash -c "for k in mamba-s4-real mamba-s4; do $ST --preset sc09-large --block \$k \
  --var AUDIOMAMBA_STEP_RUN_E --configs 32 --out $RES/runs16-width-\$k.md; done"
# (issue 18, 2026-12-07) where a one-stream run's step spends its time, read from inside the kernel (PROFILE: each
# program's SM clock at every phase's start and barrier): work per phase, the barrier, the kernel against the launch.
# One H100 14:47: sc09-small s4-real's 16 kHz block phase 3586 cycles of work against 887 at the barrier (19 %)
run run-profile bash -c "python3 -m pytest -q -p no:cacheprovider tests/test_bench_run_profile.py; \
  for p in sc09-small sc09-large; do for k in mamba-s4-real mamba-s6 mamba-s4; do timeout 120 python3 -m \
  audiomamba.bench.run_profile --preset \$p --block \$k --out $RES/run-profile-\$p-\$k.md; done; done"
# (issue 18, built 2026-12-07 15:05 on the CPU machine, not yet timed) an LTI run's weights and A, B, C loaded in the
# 3-D layout of their products (AUDIOMAMBA_STEP_RUN_3D=1): sm_90 CTA barriers in the loop body 43 -> 31 (real, 64
# columns) and 43 -> 25 (complex), 53 -> 43 at 128 columns (more shuffles there): its GPU tests, the steady step
# per preset, then the in-kernel profile with it
# one H100 2026-12-07 16:47-16:49 UTC: 0.84-0.95x everywhere (the 16 kHz phase 3586 -> 4091 cycles); removed, so
# the phase is gone
# (issue 18, 2026-12-07 17:20, new) narrower programs, as many as fit one cluster (AUDIOMAMBA_STEP_RUN_E=spread: 8 / 16
# / 32 channels at sc09-small's 16 / 4 / 1 kHz levels), with the default warps, 2 and 1: one stream per preset and block
# (one warp not at sc09-large: its 256-512 column tiles)
run run-spread bash -c "for p in sc09-small youtubemix sc09-large; do C='spread,;spread,2;spread,1'; \
  [ \$p = sc09-large ] && C='spread,;spread,2'; for k in mamba-s4-real mamba-s4 mamba-s6; do \
  $ST --preset \$p --block \$k --var AUDIOMAMBA_STEP_RUN_E,AUDIOMAMBA_STEP_RUN_WARPS --configs \"\$C\" \
  --out $RES/run-spread-\$p-\$k.md; done; done"
# (one H100 16:55: spread 1.03-1.14x at sc09-small and youtubemix, 0.51-0.71x at sc09-large; 2 or 1 warps 0.11-1.07x)
# the new default, 8 channels where that fits a cluster (128-255 channels: sc09-small's and youtubemix's 16 kHz
# levels; sc09-large unchanged), against 16 everywhere (the old default) and spread; then the CLI one-stream matrix
run run-narrow bash -c "for p in sc09-small youtubemix; do for k in mamba-s4-real mamba-s4 mamba-s6; do \
  $ST --preset \$p --block \$k --var AUDIOMAMBA_STEP_RUN_E --configs '16;spread' \
  --out $RES/run-narrow-\$p-\$k.md; done; done"
# (one H100 17:30: the new default 1.14x / 1.05x for sc09-small mamba-s4 / mamba-s6, 1.15x / 1.06x youtubemix, s4-real
# 1.00x; spread the same there) (issue 18, built 2026-12-07 17:45, not yet run on a GPU) where a phase's work goes:
# the in-kernel profile with its marks (x's partials summed, u and z ready), beside the plain profile
run run-marks bash -c "python3 -m pytest -q -p no:cacheprovider tests/test_bench_run_profile.py; \
  for p in sc09-small sc09-large; do for k in mamba-s4-real mamba-s6; do for m in '' --marks; do timeout 120 python3 \
  -m audiomamba.bench.run_profile --preset \$p --block \$k \$m --out $RES/run-profile\$m-\$p-\$k.md; done; done; done"
# (issue 18, built 2026-12-07 19:30-22:25; ran on one H100 22:32-22:41 with DSMEM_PRESETS=sc09-small, then the other
# two: DSMEM + LATE + fold 1.03-1.19x, the defaults since; the prefetch removed, the command kept as it ran; BENCHMARKS.md
# "The run kernel's levers timed") levers for one stream's run kernel, each alone and
# all together against the default: a cluster run's partials pushed to every CTA's shared memory instead of through
# L2 (AUDIOMAMBA_STEP_RUN_DSMEM=1), with the new states stored between the cluster barrier's arrive and wait
# (AUDIOMAMBA_STEP_RUN_LATE=1), the LayerNorm's two sums in one reduction (AUDIOMAMBA_STEP_RUN_LN=one-pass) or that
# reduction beside in_proj with the LayerNorm folded into the weights (AUDIOMAMBA_STEP_RUN_LN=fold), every block's
# weights hinted into L1 at the start (AUDIOMAMBA_STEP_RUN_PREFETCH=1); mamba-s6 also all at 4 warps. The GPU tests
# first, the profile with all of them last. DSMEM_PRESETS: the presets timed (default all three)
run run-dsmem bash -c "python3 -m pytest -q -p no:cacheprovider tests/test_kernels_run.py \
  -k 'distributed or cluster or layernorm_form or prefetch'; \
  for p in \${DSMEM_PRESETS:-sc09-small youtubemix sc09-large}; do for k in mamba-s4-real mamba-s4 mamba-s6; do \
  C='1,,,,;1,1,,,;,,,one-pass,;,,,fold,;,,,,1;1,1,,fold,1'; [ \$k = mamba-s6 ] && C=\"\$C;1,1,4,fold,1\"; \
  timeout 400 python3 -m audiomamba.bench.step_tiles --batch 1 --steps 2048 --rounds 3 --preset \$p --block \$k \
  --var AUDIOMAMBA_STEP_RUN_DSMEM,AUDIOMAMBA_STEP_RUN_LATE,AUDIOMAMBA_STEP_RUN_WARPS,AUDIOMAMBA_STEP_RUN_LN,\
AUDIOMAMBA_STEP_RUN_PREFETCH --configs \"\$C\" --out $RES/run-dsmem-\$p-\$k.md; done; done; \
  for k in mamba-s4-real mamba-s6; do AUDIOMAMBA_STEP_RUN_DSMEM=1 AUDIOMAMBA_STEP_RUN_LATE=1 AUDIOMAMBA_STEP_RUN_LN=fold \
  AUDIOMAMBA_STEP_RUN_PREFETCH=1 timeout 120 python3 -m audiomamba.bench.run_profile --preset sc09-small --block \$k \
  --marks --out $RES/run-profile-levers-sc09-small-\$k.md; done"
# (issue 18, built 2026-12-07 23:00-23:25, not yet run on a GPU) each next phase's own reads (weights, conv window,
# SSM state) issued between the cluster barrier's arrive and wait (AUDIOMAMBA_STEP_RUN_PIPE=1; with the levers above,
# "to x" was still ~1300 of a phase's 3275 cycles at 16 kHz): its GPU tests, one stream per preset and block against
# the default (mamba-s6 also at 4 warps, which its registers may need), the profile with its marks
run run-pipe bash -c "python3 -m pytest -q -p no:cacheprovider tests/test_kernels_run.py -k 'distributed'; \
  for p in sc09-small youtubemix sc09-large; do for k in mamba-s4-real mamba-s4 mamba-s6; do C='1,'; \
  [ \$k = mamba-s6 ] && C='1,;1,4;,4'; timeout 200 python3 -m audiomamba.bench.step_tiles --batch 1 --steps 2048 \
  --rounds 3 --preset \$p --block \$k --var AUDIOMAMBA_STEP_RUN_PIPE,AUDIOMAMBA_STEP_RUN_WARPS --configs \"\$C\" \
  --out $RES/run-pipe-\$p-\$k.md; done; done; \
  for k in mamba-s4-real mamba-s6; do AUDIOMAMBA_STEP_RUN_PIPE=1 timeout 120 python3 -m audiomamba.bench.run_profile \
  --preset sc09-small --block \$k --marks --out $RES/run-profile-pipe-sc09-small-\$k.md; done"
# (issue 18, built 2026-12-08 02:15-02:45 on the CPU machine, no device lent) a cluster run's barriers through a pair
# of mbarriers per CTA instead of the hardware cluster barrier (AUDIOMAMBA_STEP_RUN_MBAR=1; 2: each thread fences
# its stores first; a barrier was ~1000 cycles of a 16 kHz phase's 3275-4300): its GPU tests, one stream per preset
# and block against the default, the profile with its marks
run run-mbar bash -c "python3 -m pytest -q -p no:cacheprovider tests/test_kernels_run.py -k 'distributed and MBAR'; \
  for p in sc09-small youtubemix sc09-large; do for k in mamba-s4-real mamba-s4 mamba-s6; do \
  timeout 200 python3 -m audiomamba.bench.step_tiles --batch 1 --steps 2048 --rounds 3 --preset \$p --block \$k \
  --var AUDIOMAMBA_STEP_RUN_MBAR --configs '1;2' --out $RES/run-mbar-\$p-\$k.md; done; done; \
  for k in mamba-s4-real mamba-s6; do AUDIOMAMBA_STEP_RUN_MBAR=1 timeout 120 python3 -m audiomamba.bench.run_profile \
  --preset sc09-small --block \$k --marks --out $RES/run-profile-mbar-sc09-small-\$k.md; done"
# (issue 18, 2026-12-08) sc09-large's one-stream runs (96 columns padded to 128, 16 channels per program: 4x
# sc09-small's products per phase, 5455 cycles against 3275) at 8 and 2 warps per program against the default 4
run large-warps bash -c "for k in mamba-s4-real mamba-s4 mamba-s6; do timeout 200 python3 -m audiomamba.bench.step_tiles \
  --batch 1 --steps 1024 --rounds 3 --preset sc09-large --block \$k --var AUDIOMAMBA_STEP_RUN_WARPS --configs '8;2' \
  --out $RES/run-warps-sc09-large-\$k.md; done"
# the same table with every call (ours, the peer's) replayed from a CUDA graph: the GPU's time without the host's
# (the short-L rows are bound by the host in eager mode). One H100 2026-12-07 04:39 UTC: 28 of 32 rows >= 1.0x; 04:41
# with AUDIOMAMBA_SCAN_BWD_SEG_L=16384 AUDIOMAMBA_SCAN_BWD_MAXNREG=128 (the defaults since, for real A; the cap for
# 16-bit inputs): 31 of 32, the (16, 512, 16, 1024) bf16 forward 0.94x (a chained one-launch forward: 0.93x, reverted)
[ -d "$PEER_BUILD" ] && run peer-graph $B kernel --peer mamba_ssm --peer-build "$PEER_BUILD" --cuda-graph \
  --out "$RES/bench-kernel-peer-graph.md"
# (issue 14, 2026-12-06) the 0.76x row under Nsight Compute, ours and the peer's kernels of one fwd+bwd at
# (8, 128, 16, 131072) bf16: duration, registers, occupancy, issue and the warps' stall reasons side by side
[ -d "$PEER_BUILD" ] && run ncu-bwd ncu --profile-from-start off --clock-control none \
  -k "regex:(_scan_bwd_loop_kernel|_scan_bwd_local_kernel|selective_scan_bwd_kernel|_scan_fwd_seq_kernel|selective_scan_fwd_kernel)" -c 8 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats \
  --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section InstructionStats --section SourceCounters \
  python3 -m audiomamba.bench.profile_scan --ncu 2 --dtype bf16 --peer-build "$PEER_BUILD"
# (issue 14, 2026-12-06) the same replayed table with real A's backward capped (bwd-cap-real's candidate), same build
[ -d "$PEER_BUILD" ] && run peer-graph-cap env AUDIOMAMBA_SCAN_BWD_MAXNREG=${CAP:-136} $B kernel --peer mamba_ssm \
  --peer-build "$PEER_BUILD" --cuda-graph --out "$RES/bench-kernel-peer-graph-cap.md"
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
# the batch's rows in groups on their own CUDA streams (new 2026-12-04: the step kernels ran at 12 % occupancy), with
# the token checks, then the LTI blocks at 2048; and the GPU tests of the groups
run step-groups python3 -m audiomamba.bench.step_groups --blocks mamba-s6 --batches 2048,1024,512 --groups 1,2,3,4,8 \
  --out "$RES/step-groups-s6.md"
run step-groups-lti python3 -m audiomamba.bench.step_groups --blocks mamba-s4-real,mamba-s4 --batches 2048 \
  --groups 1,2,4 --out "$RES/step-groups-lti.md"
run groups-tests python3 -m pytest -q -p no:cacheprovider tests/test_generate_gpu.py -k row_groups
# more groups and batches, then the CLI path at 2048 and 1 with the rest's parts (loading, decode, files, index)
run step-groups-more python3 -m audiomamba.bench.step_groups --blocks mamba-s6 --batches 2048,4096 --groups 1,4,8,16 \
  --out "$RES/step-groups-more.md"
run step-groups-bf16 env AUDIOMAMBA_STEP_PRECISION=bf16 python3 -m audiomamba.bench.step_groups --blocks mamba-s6 \
  --batches 2048 --groups 1,8 --out "$RES/step-groups-bf16.md"
run matrix-sc09 $B generate --matrix --presets sc09-small --blocks mamba-s6,mamba-s4-real --batches 2048,1 \
  --out "$RES/bench-generate-matrix-sc09.md"
# the step kernels' software-pipelining stages (their loops run 1-4 times at sc09's widths; Triton's default 3 stages
# cost sm_90 instructions and shared memory: in_proj + conv 2200 -> 1592 SASS instructions, 49.6 -> 8 KB at 1 stage)
run step-stages python3 -m audiomamba.bench.step_tiles --rounds 3 --out "$RES/step-tiles-stages.md" \
  --configs "in_stages=1;x_stages=1;out_stages=1;in_stages=1,x_stages=1,out_stages=1"
# 16 groups against 8 with more hardware queues than the default 8 (16 groups timed 0.84 or 1.26 ms per step at random)
run groups-connections env CUDA_DEVICE_MAX_CONNECTIONS=32 python3 -m audiomamba.bench.step_groups --blocks mamba-s6 \
  --batches 2048 --groups 1,8,16 --check-seconds 0 --out "$RES/step-groups-connections.md"
# issue 14: the fully-LTI scan by chunks on tensor cores (kernels/triton_lti_chunk.py, new 2026-12-05, never run on a GPU):
# its GPU tests, complex-LTI fwd+bwd and fwd against the scan at chunks of 32/64/128, warps and rows at 64, then the
# peer table with it on (eager and CUDA-graph replays)
run lti-tests timeout 600 python3 -m pytest -q -p no:cacheprovider tests/test_kernels_lti_chunk.py
lti_sweep() { timeout 300 python3 -m audiomamba.bench.scan_env_sweep "$@" --complex; }
export -f lti_sweep
run lti-sweep bash -c "lti_sweep AUDIOMAMBA_SCAN_LTI_CHUNK 0,32,64 --backward; \
  lti_sweep AUDIOMAMBA_SCAN_LTI_CHUNK 0,32,64"
# issue 14, the selective bf16 fwd+bwd rows below the peer (0.78x at (8, 128, 16, 131072), 0.95x at (8, 2048, 16, 2048)):
# the backward's segment length, never swept (picked: 2 segments there, 2048 one-warp programs)
run bwd-seg timeout 400 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_SEG_L default,0,32768,16384,4096 \
  --backward
# the 16-bit inputs' 2 warps each way (default since 2026-12-05 04:45, measured one at a time: forward 1.54x, backward
# 1.39x at (8, 128, 16, 131072) bf16) against 4 for the other: the pair's effect, and its GPU tests
run lti-warps16 bash -c "timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_kernels_lti_chunk.py; \
  lti_sweep AUDIOMAMBA_SCAN_LTI_WARPS_BWD default,4 --backward; lti_sweep AUDIOMAMBA_SCAN_LTI_WARPS default,4"
# and the forward's (picked: 4 segments of 256 at (16, 512, 16, 1024): a local pass and a carry launch before the full
# pass, where our bf16 forward is 0.93x the peer's one launch)
run fwd-seg timeout 400 python3 -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_SEG_L default,0,512,1024
# the training step of the complex-LTI U-Net (every block mamba-s4) with the chunked scan against the scan kernels
run model-lti env AUDIOMAMBA_SCAN_LTI_CHUNK=${LTI_CHUNK:-32} timeout 550 $B model --compile --block mamba-s4 \
  --baseline AUDIOMAMBA_SCAN_LTI_CHUNK=0 --out "$RES/bench-model-lti.md"
# one launch per run of Mamba blocks for one stream (AUDIOMAMBA_STEP_RUNS, new 2026-12-04 22:40, not yet on a GPU):
# the GPU tests first (persistent grids meeting at barriers: a hang here is a barrier that never opens, hence the
# timeouts), then one stream's whole-model step with runs (1: one launch per run; split: one launch per phase)
# against the per-block launches, per block type and preset, then the CLI path at batch 1 with runs on
run runs-tests timeout 600 python3 -m pytest -q -p no:cacheprovider tests/test_kernels_run.py tests/test_generate_gpu.py \
  -k "run_step or runs or block_runs"
# the peer table with the chunked LTI defaults (after the runs' tests, which fill the peer build's minutes)
while want peer-lti && pgrep -f "bench.peer build" > /dev/null; do sleep 5; done
[ -d "$PEER_BUILD" ] && run peer-lti env AUDIOMAMBA_SCAN_LTI_CHUNK=${LTI_CHUNK:-32} bash -c "$B kernel --peer mamba_ssm \
  --peer-build $PEER_BUILD --out $RES/bench-kernel-peer-lti.md; $B kernel --peer mamba_ssm --peer-build $PEER_BUILD \
  --cuda-graph --out $RES/bench-kernel-peer-lti-graph.md"
# warps, rows and the register cap of the chunked LTI kernels (chunks of 32 by default)
run lti-geometry env AUDIOMAMBA_SCAN_LTI_CHUNK=${LTI_CHUNK:-32} bash -c "lti_sweep AUDIOMAMBA_SCAN_LTI_WARPS_BWD default,8,2 --backward; \
  lti_sweep AUDIOMAMBA_SCAN_LTI_WARPS default,8,2; lti_sweep AUDIOMAMBA_SCAN_LTI_ROWS default,32 --backward; \
  lti_sweep AUDIOMAMBA_SCAN_LTI_MAXNREG default,168,128 --backward"
# what one synchronisation costs (new 2026-12-05, not yet on a GPU): a launch in a graph, a grid barrier of 8-64
# programs, a sum across the CTAs of a thread-block cluster (Triton's num_ctas: DSMEM and hardware cluster barriers)
run sync-cost timeout 300 python3 -m audiomamba.bench.sync_cost --out "$RES/sync-cost.md"
step_runs() { timeout 300 python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_RUNS --configs "0;1;split" \
  --batch 1 --steps 2048 --rounds 3 "$@"; }
export -f step_runs
run step-runs bash -c "step_runs --out $RES/step-runs-sc09-small-s6.md"
run step-runs-lti bash -c "step_runs --block mamba-s4-real --out $RES/step-runs-sc09-small-s4-real.md; \
  step_runs --block mamba-s4 --out $RES/step-runs-sc09-small-s4.md"
run step-runs-presets bash -c "step_runs --preset youtubemix --out $RES/step-runs-youtubemix-s6.md; \
  step_runs --preset sc09-large --out $RES/step-runs-sc09-large-s6.md"
# 2 or 8 warps against 4, 8/32/64 channels per program against 16, runs on (one phase per selective block: 0.56x on
# an H200 2026-12-05, removed)
run step-runs-phases env AUDIOMAMBA_STEP_RUNS=1 bash -c "timeout 300 python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_RUN_WARPS --configs '2;8' --batch 1 \
  --steps 2048 --rounds 3 --out $RES/step-runs-warps.md; \
  timeout 300 python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_RUN_E --configs '8;32;64' --batch 1 \
  --steps 2048 --rounds 3 --out $RES/step-runs-channels.md"
# wider programs for one stream's split runs (new 2026-12-05 07:10; untried for split runs): 32-128 d_inner channels
# per program against 16 (sm_90, sc09-small's 16 kHz level, real LTI: 16 -> 126 registers, 928 instructions; 32 -> 125,
# 1104; 64 -> 218, 1360; 128 at 8 warps -> 224, 1496): fewer programs, fewer partial sums to read at each block's start
# (timed on one H100 2026-12-06 05:28-05:31 UTC: 32 channels 0.95x / 0.61x / 0.96x (s4-real / s4 / s6), 64 and 128
# 0.17-0.92x; 8 warps 0.46-0.94x, 1-2 warps 0.84-0.91x: 16 channels at 4 warps stay)
run runs-width env AUDIOMAMBA_STEP_RUNS=split bash -c "for b in mamba-s4-real mamba-s4 mamba-s6; do timeout 200 \
  python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_RUN_E --configs '32;64;128' --batch 1 --steps 2048 \
  --rounds 3 --block \$b --out $RES/runs-width-\$b.md; done; AUDIOMAMBA_STEP_RUN_WARPS=8 timeout 200 python3 -m \
  audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_RUN_E --configs '64;128' --batch 1 --steps 2048 --rounds 3 \
  --block mamba-s4-real --out $RES/runs-width8-s4-real.md; timeout 200 python3 -m audiomamba.bench.step_tiles \
  --var AUDIOMAMBA_STEP_RUN_WARPS --configs '1;2;8' --batch 1 --steps 2048 --rounds 3 --block mamba-s4-real \
  --out $RES/runs-warps-s4-real.md"
run matrix-runs timeout 500 $B generate --matrix --presets sc09-small,sc09-large,youtubemix \
  --blocks mamba-s6,mamba-s4,mamba-s4-real --batches 1 --out "$RES/bench-generate-matrix-runs.md"
# the step kernels without masks (EVEN, new 2026-12-04 21:00: 2-15 % fewer sm_90 instructions batched) against the masked
# ones, batch 2048 (with the row groups) and one stream; then the fused-step and generation GPU tests
run step-even python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_EVEN --configs 0 --rounds 4 \
  --out "$RES/step-even-2048.md"
run step-even1 python3 -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_EVEN --configs 0 --rounds 4 --batch 1 \
  --steps 2048 --out "$RES/step-even-1.md"
run even-tests python3 -m pytest -q -p no:cacheprovider tests/test_fused_step.py tests/test_generate_gpu.py
# the batched tiles swept again under the row groups (8 groups of 256 rows since 2026-12-04 20:40; the tiles were
# tuned for one group of 2048)
run step-tiles-groups python3 -m audiomamba.bench.step_tiles --rounds 3 --out "$RES/step-tiles-groups.md"
# the groups forked all at once (a group on the capture stream no longer holds the later ones back): slow runs left?
run groups-fork python3 -m audiomamba.bench.step_groups --blocks mamba-s6 --batches 2048 --groups 1,4,8,16 --rounds 6 \
  --check-seconds 0 --out "$RES/step-groups-fork.md"
# where a generation step's GPU time goes, kernel by kernel: batch 2048 (1.057 ms/step on 2026-12-04, 0.5 needed for
# 2048 SC09 seconds in 10 s) and one stream (BENCHMARKS.md, "Where a generation step's time goes")
run profile-gen python3 -m audiomamba.bench.profile_generate --batch 2048 --out "$RES/profile-generate-2048.md"
run profile-gen1 python3 -m audiomamba.bench.profile_generate --batch 1 --periods 64 --out "$RES/profile-generate-1.md"
# the same step's fused kernels under Nsight Compute (hardware counters: Firecracker machines only, KINDS.md), the
# launches of one period's first step (all 40 blocks: sc09-small's three widths): why the in_proj + conv runs at 6.7 TFLOP/s
run ncu-gen ncu --profile-from-start off --clock-control none -k "regex:_(in_conv|ssm|xproj|out_proj)_kernel" -c 160 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  --section MemoryWorkloadAnalysis python3 -m audiomamba.bench.profile_generate --batch 2048 --periods 1 --ncu
echo "PHASE done $(date -u +%T)"
