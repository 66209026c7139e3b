# Sourced by bench-session.sh and time-to-digits-job.sh (needs W and RES): core pinning and the LOSO start loop.

# TS CORES COMMAND...: run COMMAND pinned to CORES when taskset exists
TS() { if command -v taskset > /dev/null; then taskset -c "$@"; else shift; "$@"; fi; }

# start_loso CFG DEVICE FIRST_CORE WRAP NICE: one background `classifier-loso` per line of CFG (NAME ARGS...), each
# with its 5 folds at once (--jobs 5, one torch thread per fold) pinned to 5 cores from FIRST_CORE on; WRAP > 0: the
# core numbers wrap below WRAP. Sets LOSO_NEXT_CORE to the first core after them. Each run logs to $RES/loso-NAME.log,
# writes $W/loso-NAME and says "loso NAME rc=..." when it ends.
start_loso() {
  local cfg=$1 device=$2 core=$3 wrap=$4 nice=$5 name args
  cp "$cfg" /tmp/loso-start.cfg  # a re-synced tree must not change the list mid-phase
  while read -r name args; do
    (TS $core-$(( core + 4 )) nice -n "$nice" python3 -m audiomamba evaluate classifier-loso "$W/sc09-fsdd" \
       --out "$W/loso-$name" --threads 1 --jobs 5 --device "$device" --label "$name" $args \
       > "$RES/loso-$name.log" 2>&1; echo "loso $name rc=$? $(date -u +%T)") &
    core=$(( core + 5 ))
    if [ "$wrap" -gt 0 ]; then core=$(( core % wrap )); fi
  done < /tmp/loso-start.cfg
  LOSO_NEXT_CORE=$core
}
