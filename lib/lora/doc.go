// Package lora recovers pruned models with LoRA (low-rank adapters), as LLM-Pruner's
// post_training.py does with PEFT, and writes adapters in PEFT's format.
//
// An adapter adds, to each target projection y = x·Wᵀ (W [out, in]), the low-rank term
// (alpha/r)·(dropout(x)·Aᵀ)·Bᵀ with A [r, in] and B [out, r]. A starts Kaiming-uniform (a=√5, as
// torch's nn.Linear: U(−1/√in, 1/√in)) and B at zero, so training starts exactly at the base model.
// The adapter variables live in the model's store next to the base weight, at the PEFT names
// "model.layers.0.self_attn.q_proj.lora_A.weight" (store path via models.VarPath); base weights
// are frozen (SetTrainable(false)). The projection is wrapped through models.Hooks.Linear, so the
// forward pass is not copied and pruned models with per-layer shapes work unchanged.
//
// Targets are per architecture (targets.go): LLaMA's q k v o gate up down (self_attn.q_proj …
// mlp.down_proj, PEFT names q_proj … down_proj) and ChatGLM-6B's query_key_value, dense,
// dense_h_to_4h, dense_4h_to_h (transformer.layers.N.attention.query_key_value …, PEFT names the
// same). An empty Config.Targets means every projection of the model's architecture.
//
// Life cycle:
//
//	ds, err := lora.LoadDataset(m.Tokenizer, path, "alpaca", lora.DataOptions{CutoffLen: 256, ValSize: 2000})
//	res, err := lora.Finetune(ctx, m, ds, lora.TrainOptions{LoRA: lora.DefaultConfig(), OutDir: out})
//	err = lora.SaveAdapter(m, dir)  // PEFT adapter_config.json + adapter_model.safetensors (Finetune writes OutDir)
//	err = lora.Merge(m)             // W += (alpha/r)·B·A in W's dtype, adapter removed; then m.Save(dir, "")
//	err = lora.MergeFloat32(m)      // the same, merged weights kept in float32 (half-precision models)
//
//	a, err := lora.LoadAdapter(m, dir) // evaluate / generate with an unmerged adapter
//
// Finetune attaches a fresh adapter (Attach) unless the model already has one; TrainOptions.Resume
// continues from OutDir/checkpoint-N (or the latest checkpoint of OutDir).
//
// Training (Finetune) follows the original's Hugging Face Trainer set-up: AdamW (β 0.9/0.999,
// ε 1e-8, weight decay 0), linear warm-up then linear decay to zero
// (get_linear_schedule_with_warmup; the first optimizer step has learning rate 0), global-norm
// gradient clipping at 1.0 (torch clip_grad_norm_), gradient accumulation of micro-batches, and the
// loss on labels with -100 masked (Alpaca prompts masked). The AdamW update is a small explicit
// host-side update of the adapter parameters only (the base model has no optimizer state), which
// makes checkpoints exact: Resume continues bit-identically (adapter weights, moments, step; the
// data order and dropout masks are pure functions of the seed and the step). Training graphs
// project the frozen base weights with a plain DotGeneral of StopGradient(W): GoMLX's fused dense
// backward would otherwise compute every frozen weight gradient (BenchmarkStepLoRAFusedMedium).
//
// Differences from the original, on purpose: sequences are right-padded (the original pads on
// the left without position ids, which shifts positions of short sequences), padded lengths are
// multiples of 32 (not 8: fewer compiled shapes, same loss), records whose prompt fills the cutoff
// are skipped and counted instead of contributing no loss, each epoch drops the examples that do
// not fill a last batch, and the validation loss is token-weighted.
package lora
