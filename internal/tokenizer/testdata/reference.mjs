// Prints the token ids that Hugging Face's JavaScript tokenizers
// (@huggingface/tokenizers) give for a list of texts, for the Go tests to
// compare against.
//
// Usage: node reference.mjs NODE_MODULES TOKENIZER_JSON CONFIG_JSON < texts.json
// texts.json is a JSON array of strings. Output: a JSON array with, per
// text, {"special": ids with add_special_tokens, "plain": ids without}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [modules, tokPath, cfgPath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), "noop.js"));
const { Tokenizer } = require("@huggingface/tokenizers");

const tokJSON = JSON.parse(readFileSync(tokPath, "utf8"));
const cfgJSON = cfgPath && cfgPath !== "-" ? JSON.parse(readFileSync(cfgPath, "utf8")) : {};
const tok = new Tokenizer(tokJSON, cfgJSON);
const texts = JSON.parse(readFileSync(0, "utf8"));
const out = texts.map((t) => ({
  special: tok.encode(t, { add_special_tokens: true }).ids,
  plain: tok.encode(t, { add_special_tokens: false }).ids,
}));
process.stdout.write(JSON.stringify(out));
