#!/usr/bin/env bash
# The light referring model (#18) trained on a lent GPU, in one call of under 10 minutes:
#   bash scripts/gpu_referring.sh [extra tools/train.py flags for the training step]
# 1. device facts
# 2. train configs/train_referring_synthetic_gpu.yaml from the committed light weights for
#    REFERRING_MINUTES (default 5) of training, validating every epoch (1250 steps), and
#    export fp16 weights with their vocabulary: $LOGS/referring_gpu.pth, _vocab.txt
# 3. score them as the README does: held-out combinations, unseen wording and the
#    training descriptions on 400 held-out videos
# 4. python tools/infer.py --demo --text with them: first-frame J and mean J
# Logs (train.log, log.csv, val.csv, evaluate.log, demo.log, summary.txt) and the exported
# weights go to $OUT (else ./gpu_referring_logs); the run's checkpoints stay in
# runs/referring_synthetic_gpu. The whole run stops within GPU_REFERRING_SECONDS (default
# 570). A dry run on a CPU: DEVICE=cpu REFERRING_MINUTES=0.5 VAL_VIDEOS=20 bash scripts/gpu_referring.sh
set -u
cd "$(dirname "$0")/.."
LOGS="${OUT:-$PWD/gpu_referring_logs}"
BUDGET_SECONDS="${GPU_REFERRING_SECONDS:-570}"
source scripts/steps.sh
DEVICE="${DEVICE:-cuda}"
MINUTES="${REFERRING_MINUTES:-5}"
VAL_VIDEOS="${VAL_VIDEOS:-400}"
RUN=runs/referring_synthetic_gpu
W="$LOGS/referring_gpu.pth"

facts() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
  echo "cores: $(nproc)"
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
}

export -f facts
step facts 30 bash -c facts
rm -rf "$RUN"
# Training stops at the first step past MINUTES, then validates and exports (start-up and the
# last validation come on top: about a minute).
step train $((${MINUTES%.*} * 60 + 150)) python tools/train.py --config configs/train_referring_synthetic_gpu.yaml \
  --device "$DEVICE" --init weights/demo_referring_light.pth --time-limit "$MINUTES" --export "$W" \
  --output-dir "$RUN" --validate-first --no-progress "$@"
cp "$RUN"/log.csv "$RUN"/val.csv "$LOGS"/ 2>/dev/null
if [ -f "$W" ]; then
  step evaluate 150 python tools/train.py --config configs/train_referring_synthetic.yaml --evaluate "$W" \
    --val-videos "$VAL_VIDEOS" --seen-descriptions --device "$DEVICE" --no-progress
  step demo 90 python tools/infer.py --demo --text --referring-weights "$W" --device "$DEVICE" --no-progress
else
  echo "=== no exported weights: evaluate and demo skipped" | tee -a "$SUMMARY"
fi
echo "=== done in $SECONDS s; logs in $LOGS" | tee -a "$SUMMARY"
