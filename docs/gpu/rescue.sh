#!/bin/bash
# rescue.sh FILES_AT: after the device machine went back mid-run, rebuild the run folder here from the last
# poll's files (docs/gpu/poll.sh) into .rescue/t2d: the run folder without checkpoints (partial.tgz) and its slim
# last.pt (the joined parts); the slim snapshots go to .rescue-snaps/t2d. The next call, with carry
# [".whl", ".data/sc09-fsdd-flac.tar.xz", ".rescue"], starts docs/gpu/time-to-digits-job.sh as usual: it finds
# .rescue/t2d/last.pt and resumes the run (train --resume; fresh AdamW moments; the training clock goes on).
set -eu
FROM=${1:?usage: docs/gpu/rescue.sh FILES_AT (the folder of the last poll files)}
[ -f "$FROM/partial.tgz" ] && ls "$FROM"/last-slim.pt.part-* > /dev/null 2>&1 \
  || { echo "rescue.sh: $FROM has no partial.tgz or last-slim.pt.part-*: nothing to resume from; start the job again" >&2; exit 2; }
rm -rf .rescue && mkdir -p .rescue
tar -xzf "$FROM/partial.tgz" -C .rescue t2d
rm -f .rescue/t2d/.lock
cat "$FROM"/last-slim.pt.part-* > .rescue/t2d/last.pt
# the snapshots stay out of .rescue: with them the carried tree would pass 64 MiB (3 x 6.6 MB for sc09-mamba-fast-aug).
# The resumed run takes its later snapshots itself; these are scored in a call of their own (README.md, "Rescue").
rm -rf .rescue-snaps
if ls "$FROM"/snap-*min.pt > /dev/null 2>&1; then
  mkdir -p .rescue-snaps && tar -xzf "$FROM/partial.tgz" -C .rescue-snaps t2d && rm -f .rescue-snaps/t2d/.lock
  cp "$FROM"/snap-*min.pt .rescue-snaps/t2d/
  echo ".rescue-snaps/t2d: $(cd .rescue-snaps/t2d && ls snap-*min.pt | tr '\n' ' ')"
fi
python3 -c "import torch; s = torch.load('.rescue/t2d/last.pt', weights_only=True); print(f'.rescue/t2d: step {s[\"step\"]}, {s[\"elapsed_s\"] / 60:.1f} min of training')"
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
carry=$(du -cb .whl .data/sc09-fsdd-flac.tar.xz .rescue | tail -1 | cut -f1)
echo "carried tree with .rescue: $(( (tree + carry) / 1048576 )) MiB of 64"
