#!/bin/bash
# poll.sh SECONDS: wait until the job says "PHASE done" or SECONDS pass, copying the results so far into
# $OUT every minute (a call cut off by the device budget still brings back the last copy).
# $OUT gets at most 8 files:
#   logs.tgz         the job's logs and reports ($RES, default /tmp/res: *.log, *.md, *.png, *.json: the classifiers'
#                    histories; a second bench-session started with RES=/tmp/res2 and its log in /tmp/job2.log is
#                    polled with the same RES and JOB=/tmp/job2.log: on 2026-12-04 a poll of the second job
#                    returned at once, as it read the first job's "PHASE done")
#   partial.tgz      the run folders without checkpoints and WAVs (t2d, t2d-eval*)
#   loso-partial.tgz the LOSO folders without fold weights (only when the job ran LOSO)
#   last-slim.pt.part-aa, -ab   the run's last.pt, slim (no optimizer state, EMA in bf16, or no EMA when the copy
#                    would pass 56 MiB; split under 16 MiB)
#   snap-<m>min.pt   each time-to-quality snapshot, slim for sampling (EMA weights in bf16), where it still fits
# With these, docs/gpu/rescue.sh rebuilds the run folder here, and a fresh machine resumes it (README.md, "Rescue").
# the package and wheels that call 1 installed (a poll call that forgot the export lost its slim copies on 2026-12-03)
# PYTHONSAFEPATH: `python3 -m` must not put the checkout first on sys.path (its audiomamba/ lacks the installed
# namespace's kernels, so the slim copies failed to import on 2026-12-03 14:18 when a poll call left it out)
[ -d /tmp/pkg ] && export PYTHONPATH="${PYTHONPATH:-/tmp/pkg:/tmp/site}" PYTHONSAFEPATH=1
RES=${RES:-/tmp/res}
SLIM=/tmp/slim; mkdir -p "$SLIM"
slim() {  # refresh the slim copies when the trainer has written a newer checkpoint (os.replace: never half-written)
  local last=/tmp/w/t2d/last.pt
  if [ -f "$last" ] && { [ ! -f "$SLIM/stamp" ] || [ "$last" -nt "$SLIM/stamp" ]; }; then
    # the stamp moves only when the copy succeeded (on 2026-12-03 a failed import stamped it anyway, and
    # run 11's later polls kept sending the step-2384 copy)
    touch "$SLIM/stamp.new"
    # a copy over 56 MiB (12.8 M parameters: run 12 on 2026-12-03, whose fifth part never came back) drops the EMA,
    # so that its parts and the logs fit the 64 MiB a call brings back; a resume restarts the EMA from the weights
    python3 -m audiomamba.train.slim "$last" "$SLIM/last-slim.pt" --max-mib 56 > /dev/null \
      && rm -f "$SLIM"/last-slim.pt.part-* && split -b 15M "$SLIM/last-slim.pt" "$SLIM/last-slim.pt.part-" \
      && mv "$SLIM/stamp.new" "$SLIM/stamp"
  fi
  for s in /tmp/w/t2d/snap-*min.pt; do
    [ -f "$s" ] && [ ! -f "$SLIM/$(basename "$s")" ] \
      && python3 -m audiomamba.train.slim "$s" "$SLIM/$(basename "$s")" --sampling > /dev/null
  done
}
copy() {
  (cd "$RES" 2>/dev/null && tar -czf "$OUT/logs.tgz" $(ls ./*.log ./*.md ./*.png ./*.json 2>/dev/null) 2>/dev/null)
  [ -d /tmp/w/t2d ] && (cd /tmp/w && tar --exclude='*.pt' --exclude='*.wav' --exclude='.lock' -czf "$OUT/partial.tgz" t2d t2d-eval* 2>/dev/null)
  ls "$RES"/*.pt > /dev/null 2>&1 && (cd "$RES" && tar -czf "$OUT/weights.tgz" ./*.pt)  # bench-session's classifiers
  ls -d /tmp/w/loso-* > /dev/null 2>&1 && (cd /tmp/w && tar --exclude='classifier-*.pt' -czf "$OUT/loso-partial.tgz" loso-*)
  slim
  # what comes back is at most 8 files, 16 MiB each, 64 MiB together: the parts first, then snapshots that still fit
  local f n size total
  rm -f "$OUT"/last-slim.pt.part-* "$OUT"/snap-*min.pt  # last minute's copies
  n=$(ls "$OUT" | wc -l); total=$(du -cb "$OUT"/* 2>/dev/null | tail -1 | cut -f1)
  for f in "$SLIM"/last-slim.pt.part-* "$SLIM"/snap-*min.pt; do
    [ -f "$f" ] || continue
    size=$(stat -c %s "$f")
    if [ "$n" -lt 8 ] && [ "$size" -le $(( 16 * 1024 * 1024 )) ] && [ $(( ${total:-0} + size )) -le $(( 63 * 1024 * 1024 )) ]; then
      cp "$f" "$OUT"/ && n=$(( n + 1 )) && total=$(( ${total:-0} + size ))
    fi
  done
}
end=$(( $(date +%s) + ${1:-500} ))
next=$(( $(date +%s) + 60 ))
JOB=${JOB:-/tmp/job.log}  # the job's log (a second bench-session: JOB=/tmp/job2.log with its RES)
while [ "$(date +%s)" -lt $end ] && ! grep -q "PHASE done" "$JOB" 2>/dev/null; do
  sleep 10
  if [ "$(date +%s)" -ge $next ]; then copy; next=$(( $(date +%s) + 60 )); fi
done
copy
cat "$JOB"; tail -c 400 "$RES"/train.log 2>/dev/null; ls -la "$OUT"
