// Checks a tokenizer.json against llama.cpp's test set with @huggingface/tokenizers (an independent
// implementation of tokenizer.json), e.g. for the files scripts/tokenizer_json_from_gguf.go writes:
//
//   NODE_PATH=/path/to/node_modules node scripts/tokenizer_json_ref.mjs DIR $LLMPRUNER_DATA/tokenizers/llamacpp-vocab/ggml-vocab-qwen2.gguf
//
// (NODE_PATH: where `npm install @huggingface/tokenizers` put it.)
//
// DIR holds tokenizer.json and tokenizer_config.json; the .inp/.out files beside the GGUF are the
// test strings and Hugging Face's ids. Prints how many strings match and exits 1 on a mismatch.
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const pkg = path.join(process.env.NODE_PATH || "node_modules", "@huggingface/tokenizers");
const main = JSON.parse(readFileSync(path.join(pkg, "package.json"), "utf8")).main;
const { Tokenizer } = await import(pathToFileURL(path.join(pkg, main)).href);
const [dir, gguf] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
  JSON.parse(readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")));
const texts = readFileSync(gguf + ".inp", "utf8").replace(/\n__ggml_vocab_test__\n$/, "").split("\n__ggml_vocab_test__\n");
const want = readFileSync(gguf + ".out", "utf8").replace(/\n$/, "").split("\n").map((l) => l.trim() === "" ? [] : l.trim().split(/\s+/).map(Number));
let bad = 0;
texts.forEach((t, i) => {
  const got = tok.encode(t, { add_special_tokens: false }).ids;
  if (JSON.stringify(got) !== JSON.stringify(want[i])) {
    bad++;
    console.log(`mismatch ${JSON.stringify(t)}\n got ${got}\nwant ${want[i]}`);
  }
});
console.log(`${texts.length - bad} of ${texts.length} test strings match`);
process.exit(bad ? 1 : 0);
