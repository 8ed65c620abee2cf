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
// Life cycle:
//
//	a, err := lora.Attach(m, lora.DefaultConfig(), seed)   // or lora.LoadAdapter(m, dir)
//	res, err := lora.Finetune(ctx, m, trainSet, valSet, lora.TrainOptions{OutDir: out, ...})
//	err = lora.SaveAdapter(m, dir)                           // PEFT adapter_config.json + adapter_model.safetensors
//	err = lora.Merge(m)                                      // W += (alpha/r)·B·A; then m.Save(dir, "")
//
// Training (Finetune) follows the original's Hugging Face Trainer set-up: AdamW (β 0.9/0.999,
// ε 1e-8, weight decay 0), linear warm-up then linear decay to zero
// (get_linear_schedule_with_warmup; the first optimizer step has learning rate 0), global-norm
// gradient clipping at 1.0 (torch clip_grad_norm_), gradient accumulation of micro-batches, and the
// loss on labels with -100 masked (Alpaca prompts masked). The AdamW update is a small explicit
// host-side update of the adapter parameters only (the base model has no optimizer state), which
// makes checkpoints exact: Resume continues bit-identically (adapter weights, moments, step; the
// data order and dropout masks are pure functions of the seed and the step).
package lora
