// Renders chat templates with @huggingface/jinja (the engine of
// transformers.js) for the Go tests to compare against.
//
// Usage: node render.mjs NODE_MODULES < cases.json
// cases.json: [{"template": "...", "vars": {...}}]; output: a JSON array
// of {"out": "..."} or {"error": "..."}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(path.resolve(process.argv[2]), "noop.js"));
const { Template } = require("@huggingface/jinja");

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = cases.map((c) => {
  try {
    // @huggingface/jinja provides raise_exception itself.
    return { out: new Template(c.template).render(c.vars) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
});
process.stdout.write(JSON.stringify(out));
