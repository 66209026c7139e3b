#!/bin/bash
# poll.sh SECONDS: wait until the job says "PHASE done" or SECONDS pass, copying the results so far into
# $OUT every minute (a call cut off by the device budget still brings back the last copy).
# $OUT gets at most 8 files: logs.tgz, partial.tgz (run folders without checkpoints and WAVs),
# loso-partial.tgz (LOSO folders without fold weights), and the reports (*.md, *.png) of /tmp/res.
copy() {
  (cd /tmp/res 2>/dev/null && tar -czf "$OUT/logs.tgz" ./*.log 2>/dev/null)
  cp /tmp/res/*.md /tmp/res/*.png "$OUT"/ 2>/dev/null
  [ -d /tmp/w/t2d ] && (cd /tmp/w && tar --exclude='*.pt' --exclude='*.wav' -czf "$OUT/partial.tgz" t2d t2d-eval* 2>/dev/null)
  ls -d /tmp/w/loso-* > /dev/null 2>&1 && (cd /tmp/w && tar --exclude='classifier-*.pt' -czf "$OUT/loso-partial.tgz" loso-*)
}
end=$(( $(date +%s) + ${1:-500} ))
next=$(( $(date +%s) + 60 ))
while [ "$(date +%s)" -lt $end ] && ! grep -q "PHASE done" /tmp/job.log 2>/dev/null; do
  sleep 10
  if [ "$(date +%s)" -ge $next ]; then copy; next=$(( $(date +%s) + 60 )); fi
done
copy
cat /tmp/job.log; tail -c 400 /tmp/res/train.log 2>/dev/null; ls "$OUT"
