// Package chattemplate renders the Jinja2 chat templates that Hugging Face
// tokenizer_config.json files carry. It implements the subset of Jinja
// that real templates use: for loops (with loop.index0, first, last, ...),
// if/elif/else, set (namespace() included), macros, expressions with
// filters and tests, Python string methods, and whitespace control with
// trim_blocks and lstrip_blocks on, as transformers configures Jinja.
package chattemplate
