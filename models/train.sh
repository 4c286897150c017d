#!/usr/bin/env bash
# Trains slimlm's default model (models/slimlm-stories-6m.f16.gguf) from scratch with slimlm:
# a 4096-token vocabulary learned from the TinyStories training stories, then a 5.8 M-parameter
# Llama trained on them for 2000 steps (about 33 minutes on 2 Zen 4 cores), written as f16.
#
#   models/train.sh [TRAINING_TEXT] [OUT_DIR]
#
# Training is deterministic for a given thread count (-t 2) and kernel path (AVX-512 here);
# other machines give a model of the same quality, not the same bits. Interrupted, the same
# command resumes from OUT_DIR/model.ckpt.
set -euo pipefail
cd "$(dirname "$0")/.."
text=${1:-../shared/data/text/tinystories/train/tinystories-train-00.txt}
out=${2:-out/default-model}
slimlm=build/release/src/tools/slimlm
[ -x "$slimlm" ] || { cmake --preset release && cmake --build --preset release --target slimlm; }
mkdir -p "$out"
"$slimlm" train-tokenizer "$text" --vocab-size 4096 -o "$out/tok4096.gguf"
start=(--preset tiny --dim 256 --layers 6 --heads 8 --kv-heads 4 --ffn 768
       --tokenizer "$out/tok4096.gguf")
[ -f "$out/model.ckpt" ] && start=(--resume "$out/model.ckpt")
"$slimlm" train "${start[@]}" --data "$text" --token-cache "$out/tokens.cache" \
  -o "$out/model.f32.gguf" --ctx 256 --batch 16 --steps 2000 --lr 2e-3 --min-lr 1e-4 \
  --warmup 100 --dropout 0.1 --eval-every 100 --eval-windows 64 \
  --checkpoint "$out/model.ckpt" --checkpoint-every 100 -t 2 --seed 1
"$slimlm" convert "$out/model.f32.gguf" "$out/slimlm-stories-6m.f16.gguf" --type f16 \
  --name slimlm-stories-6m
echo "wrote $out/slimlm-stories-6m.f16.gguf"
