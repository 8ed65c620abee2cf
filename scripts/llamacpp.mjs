// Runs a GGUF model in real llama.cpp (the prebuilt CPU build that node-llama-cpp 3.22.1 ships,
// llama.cpp release v0.5.0) and prints JSON results: the independent reference that llmpruner's GGUF
// export is checked against (lib/models, cmd/llmpruner tests; tutorials/09-deploy.ipynb).
//
//   node scripts/llamacpp.mjs REQUEST.json        (or the request on stdin)
//
// The request: {"runs": [{"model": "m.gguf", "context": 512, "tasks": [...]}, ...], "threads": N}
// (or one run's object alone), with tasks
//   {"op": "greedy",   "ids": [1], "n": 64}        greedy continuation (argmax of the logits) of ids
//   {"op": "logits",   "ids": [1, 403, ...]}       teacher-forced logits after every position
//   {"op": "tokenize", "texts": ["Hello", ...]}    model.tokenize(text) (no BOS, special tokens as text;
//                                                  "special": true matches them as Hugging Face does)
//   {"op": "bench",    "prompt": 128, "decode": 32, "repeat": 1}  prompt and decode tokens/s
// Results come back in the same order, per run: {"ids": [...]}, {"logits": [[...], ...]},
// {"ids": [[...]]}, {"prompt_tok_s": x, "decode_tok_s": y}; printed as {"threads": N, "runs": [[...], ...]}.
//
// node-llama-cpp is found in $LLMPRUNER_NODE_MODULES (a node_modules directory, installed with
// NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional node-llama-cpp@3.22.1
// @node-llama-cpp/linux-x64@3.22.1); nothing is compiled or downloaded. Exact comparisons need
// the F32 KV cache and no flash attention used here; all CPU cores are used (the library's
// default thread setting is far slower).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {pathToFileURL} from "node:url";

const modules = process.env.LLMPRUNER_NODE_MODULES;
if (!modules) {
    console.error("llamacpp.mjs: set LLMPRUNER_NODE_MODULES to the node_modules directory holding node-llama-cpp");
    process.exit(2);
}
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(path.join(modules, "node-llama-cpp", "dist", "index.js")).href);

const request = JSON.parse(fs.readFileSync(process.argv[2] ?? 0, "utf8"));
const threads = request.threads ?? os.availableParallelism();
const llama = await getLlama({gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error});
let model, context, vocab;

// dense turns node-llama-cpp's logits map (token → logit) into an array over the vocabulary.
function dense(map) {
    const n = Math.max(vocab, ...map.keys()) + 1;
    const out = new Array(n).fill(0);
    for (const [tok, v] of map) out[tok] = v;
    return out;
}

function argmax(xs) {
    let best = 0;
    for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
    return best;
}

async function withSequence(fn) {
    const seq = context.getSequence();
    try {
        return await fn(seq);
    } finally {
        seq.dispose();
    }
}

async function logitsAfter(seq, ids, all) {
    const items = ids.map((t, i) => (all || i === ids.length - 1) ? [t, {generateNext: {logits: true}}] : t);
    const res = await seq.controlledEvaluate(items);
    return res.filter((r) => r?.next?.logits).map((r) => dense(r.next.logits));
}

const tasks = {
    async greedy({ids, n}) {
        return withSequence(async (seq) => {
            const out = [];
            let input = ids;
            for (let i = 0; i < n; i++) {
                const [last] = await logitsAfter(seq, input, false);
                const next = argmax(last);
                out.push(next);
                input = [next];
            }
            return {ids: out};
        });
    },
    async logits({ids}) {
        return withSequence(async (seq) => ({logits: await logitsAfter(seq, ids, true)}));
    },
    async tokenize({texts, special = false}) {
        return {ids: texts.map((t) => Array.from(model.tokenize(t, special)))};
    },
    async bench({prompt, decode, repeat = 1}) {
        let best = {prompt_tok_s: 0, decode_tok_s: 0};
        for (let r = 0; r < repeat; r++) {
            const res = await withSequence(async (seq) => {
                const ids = Array.from({length: prompt}, (_, i) => 3 + (i * 7919) % Math.max(1, vocab - 3));
                let t0 = performance.now();
                await seq.evaluateWithoutGeneratingNewTokens(ids);
                const promptS = (performance.now() - t0) / 1000;
                let n = 0;
                t0 = performance.now();
                for await (const _ of seq.evaluate([ids[0]], {temperature: 0})) {
                    if (++n >= decode) break;
                }
                const decodeS = (performance.now() - t0) / 1000;
                return {prompt_tok_s: prompt / promptS, decode_tok_s: n / decodeS};
            });
            best = {prompt_tok_s: Math.max(best.prompt_tok_s, res.prompt_tok_s), decode_tok_s: Math.max(best.decode_tok_s, res.decode_tok_s)};
        }
        return best;
    },
};

async function run({model: modelPath, context: contextSize = 512, tasks: list}) {
    model = await llama.loadModel({modelPath, gpuLayers: 0});
    context = await model.createContext({
        contextSize, batchSize: contextSize, sequences: 1, threads,
        flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
    });
    vocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 0;
    const results = [];
    for (const task of list) {
        const fn = tasks[task.op];
        if (!fn) throw new Error(`unknown op ${JSON.stringify(task.op)}`);
        results.push(await fn(task));
    }
    await context.dispose();
    await model.dispose();
    return results;
}

const runs = [];
for (const r of request.runs ?? [request]) runs.push(await run(r));
// A large JSON written with an immediate process.exit would be cut at 64 KB on a pipe.
process.stdout.write(JSON.stringify({threads, runs}) + "\n", () => process.exit(0));
