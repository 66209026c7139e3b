#!/bin/bash
# poll: wait up to $1 s or until PHASE done, then copy what exists to $OUT
end=$(( $(date +%s) + ${1:-500} ))
while [ $(date +%s) -lt $end ] && ! grep -q "PHASE done" /tmp/job.log 2>/dev/null; do sleep 10; done
cat /tmp/job.log; tail -c 400 /tmp/res/train.log
(cd /tmp/res && tar -czf "$OUT/logs.tgz" *.log 2>/dev/null); cp /tmp/res/*.md /tmp/res/*.png "$OUT"/ 2>/dev/null
[ -d /tmp/w/t2d ] && (cd /tmp/w && tar --exclude='*.pt' --exclude='*.wav' -czf "$OUT/partial.tgz" t2d t2d-eval* 2>/dev/null)
ls -d /tmp/w/loso-* >/dev/null 2>&1 && (cd /tmp/w && tar --exclude="classifier-*.pt" -czf "$OUT/loso-partial.tgz" loso-*)
cp /tmp/res/run7.tgz "$OUT"/ 2>/dev/null; ls "$OUT"
