#!/usr/bin/env bash
# Measures the README's "Beyond LLM-Pruner" table on stories260K: held-out TinyStories perplexity of
# Taylor (LLM-Pruner), L2, FLAP and Wanda-sp, each without and with --reconstruct, at 20% and 50% of
# the parameters removed, with the wall time and peak RSS of each `llmpruner prune` run
# (/usr/bin/time), and LoRA recovery for the criteria named in LORA.
#
#   scripts/beyond_llm_pruner.sh [OUT_DIR]        (default: a temporary directory, kept)
#
# Data split (calibration never overlaps evaluation): the TinyStories file is cut at the first
# document boundary ("\n\n") after EVAL_BYTES bytes; the documents before it are the evaluation text,
# the documents after it the calibration (and LoRA) text.
#
# Equal sizes across rows: Taylor, L2 and Wanda-sp prune each layer uniformly (block ratio R20/R50:
# 0.22 → 19.9% and 0.6 → 50.2% of stories260K's parameters); FLAP's adaptive ratio (a fraction of the
# prunable attention+MLP parameters) is adjusted until its model has the same parameter count within
# one MLP channel (192 parameters), counting the zero q/k/v/gate/up biases its HF output carries.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${LLMPRUNER_DATA:?set LLMPRUNER_DATA}"
out="${1:-$(mktemp -d -t llmpruner-beyond.XXXXXX)}"
mkdir -p "$out"
EVAL_BYTES="${EVAL_BYTES:-200000}"
N="${CALIB_N:-128}"      # calibration samples
LEN="${CALIB_LEN:-64}"   # tokens per sample
R20="${R20:-0.22}"
R50="${R50:-0.6}"
LORA="${LORA:-}"          # e.g. "flap wanda-sp" (criteria to recover with LoRA, reconstructed variant)
LORA_STEPS="${LORA_STEPS:-200}"

bin="$out/llmpruner"
(cd "$root" && go build -o "$bin" ./cmd/llmpruner)
model="$LLMPRUNER_DATA/models/stories260K/stories260K.bin"
/usr/bin/python3 - "$LLMPRUNER_DATA/text/tinystories/tinystories_val_head.txt" "$out" "$EVAL_BYTES" <<'EOF'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
cut = text.index("\n\n", int(sys.argv[3]))
open(sys.argv[2] + "/eval.txt", "w", encoding="utf-8").write(text[:cut])
open(sys.argv[2] + "/calib.txt", "w", encoding="utf-8").write(text[cut + 2 :])
EOF
calib=(--calib "$out/calib.txt" --num-examples "$N" --calib-seq-len "$LEN")

ppl() { "$bin" eval ppl --model "$1" --data "tinystories=$out/eval.txt" --seq-len 128 --json 2>/dev/null |
  /usr/bin/python3 -c 'import json,sys; print("%.4f" % json.loads(sys.stdin.read())["sets"][0]["ppl"])'; }
params() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["params_after"])' "$1"; }

# prune NAME ARGS...: runs prune under /usr/bin/time; prints "seconds peakKB".
prune() {
  local name="$1"; shift
  /usr/bin/time -f "%e %M" -o "$out/$name.time" "$bin" prune --model "$model" --out "$out/$name" --force \
    --save-plan "$out/$name.plan.json" "$@" >/dev/null 2>"$out/$name.log" || { cat "$out/$name.log" >&2; exit 1; }
  cat "$out/$name.time"
}

echo "| target | criterion | reconstruct | params | PPL | prune time (s) | peak RSS (MB) |"
echo "|---|---|---|---:|---:|---:|---:|"
echo "| dense | – | – | 260,032 | $(ppl "$model") | – | – |"
for target in 20 50; do
  R=$R20; [[ $target == 50 ]] && R=$R50
  want=""
  for crit in taylor l2 wanda-sp flap; do
    for rec in no yes; do
      name="t$target-$crit-$rec"
      extra=(); [[ $rec == yes ]] && extra=(--reconstruct)
      if [[ $crit == flap ]]; then
        r=$(/usr/bin/python3 -c "print($R * 0.95)")
        for _ in 1 2 3 4 5; do
          read -r secs kb < <(prune "$name" --strategy block --ratio "$r" --criterion flap "${calib[@]}" "${extra[@]}")
          got=$(params "$out/$name.plan.json")
          (( got - want <= 192 && want - got <= 192 )) && break
          r=$(/usr/bin/python3 -c "print($r + ($got - $want) / 226560)")
        done
      else
        read -r secs kb < <(prune "$name" --strategy block --ratio "$R" --criterion "$crit" "${calib[@]}" "${extra[@]}")
      fi
      p=$(params "$out/$name.plan.json"); [[ -z $want ]] && want=$p
      echo "| $target% | $crit | $rec | $p | $(ppl "$out/$name") | $secs | $((kb / 1024)) |"
    done
  done
  for crit in $LORA; do
    name="t$target-$crit-yes"
    /usr/bin/time -f "%e %M" -o "$out/$name-lora.time" "$bin" finetune --model "$out/$name" --data "$out/calib.txt" --data-format text \
      --cutoff-len 128 --batch 16 --micro-batch 16 --lr 3e-3 --max-steps "$LORA_STEPS" --warmup-steps 20 --val-size 32 \
      --eval-every 1000 --out "$out/$name-lora" --merge >/dev/null 2>"$out/$name-lora.log" || { cat "$out/$name-lora.log" >&2; exit 1; }
    read -r secs kb < "$out/$name-lora.time"
    echo "| $target% | $crit + LoRA ($LORA_STEPS steps) | yes | $(params "$out/$name.plan.json") | $(ppl "$out/$name-lora/merged") | $secs (LoRA) | $((kb / 1024)) |"
  done
done
echo "(outputs in $out)" >&2
