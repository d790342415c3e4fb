# Sourced by the scripts/gpu_*.sh checks: logs, a deadline and `step`.
#   LOGS=DIR BUDGET_SECONDS=N source scripts/steps.sh
# LOGS gets one log per step and summary.txt (every step's exit status).
mkdir -p "$LOGS"
SUMMARY="$LOGS/summary.txt"
: > "$SUMMARY"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # tools/*.py import this checkout's afb_urr
DEADLINE=$((SECONDS + BUDGET_SECONDS))

step() {  # step NAME SECONDS CMD...: run with a time limit, log, record the exit status
  local name="$1" limit="$2"
  shift 2
  local t0=$SECONDS left=$((DEADLINE - SECONDS))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 15 ]; then
    echo "=== $name: SKIPPED, the time budget is spent" | tee -a "$SUMMARY"
    return 0
  fi
  echo "=== $name (limit $limit s): $*" | tee -a "$SUMMARY"
  timeout --signal=KILL "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  local how="exit $rc"
  if [ "$rc" -gt 128 ]; then how="exit $rc (signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"; fi
  echo "    $how after $((SECONDS - t0)) s; log: $name.log" | tee -a "$SUMMARY"
  tail -n 25 "$LOGS/$name.log"
  return 0
}
