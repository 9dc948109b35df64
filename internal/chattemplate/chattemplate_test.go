package chattemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const nodeModules = "../../tools/js/node_modules"

type chatCase struct {
	name     string
	template string // file under testdata/templates
	vars     map[string]any
}

func msgs(pairs ...string) []any {
	var l []any
	for i := 0; i+1 < len(pairs); i += 2 {
		l = append(l, map[string]any{"role": pairs[i], "content": pairs[i+1]})
	}
	return l
}

func chatCases() []chatCase {
	conv := msgs("system", "You are terse.", "user", "Hi there!", "assistant", "Hello. How can I help?", "user", "What's 2+2? Explain x.")
	noSys := msgs("user", "Hi", "assistant", "Hey", "user", "Bye?")
	think := msgs("user", "Q1", "assistant", "<think>\nreasoning here\n</think>\n\nAnswer one", "user", "Q2", "assistant", "<think>more</think>Final")
	var cases []chatCase
	for _, tpl := range []string{"chatml", "smollm2", "qwen3", "features"} {
		for _, c := range []struct {
			name string
			m    []any
		}{{"conv", conv}, {"nosys", noSys}, {"think", think}} {
			for _, gen := range []bool{false, true} {
				name := tpl + "/" + c.name
				if gen {
					name += "+gen"
				}
				cases = append(cases, chatCase{name, tpl, map[string]any{
					"messages": c.m, "add_generation_prompt": gen, "bos_token": "<s>", "eos_token": "</s>",
				}})
			}
		}
	}
	cases = append(cases,
		chatCase{"qwen3/nothink", "qwen3", map[string]any{"messages": noSys, "add_generation_prompt": true, "enable_thinking": false}},
		chatCase{"mistral/ok", "mistral", map[string]any{"messages": noSys, "bos_token": "<s>", "eos_token": "</s>"}},
		chatCase{"mistral/raise", "mistral", map[string]any{"messages": conv, "bos_token": "<s>", "eos_token": "</s>"}},
	)
	return cases
}

func readTemplate(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/templates", name+".jinja"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMatchesHuggingFaceJinja renders real chat templates (ChatML,
// SmolLM2, Qwen3, Mistral) and a feature-coverage template, and compares
// with @huggingface/jinja, the engine transformers.js uses.
func TestMatchesHuggingFaceJinja(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeModules, "@huggingface/jinja"))
	}
	if err != nil {
		msg := "node or @huggingface/jinja in tools/js not available: " + err.Error()
		if os.Getenv("GANTRY_REQUIRE_REFERENCES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; run scripts/setup-test-deps.sh to enable")
	}
	cases := chatCases()
	type jsCase struct {
		Template string         `json:"template"`
		Vars     map[string]any `json:"vars"`
	}
	in := make([]jsCase, len(cases))
	for i, c := range cases {
		in[i] = jsCase{readTemplate(t, c.template), c.vars}
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "testdata/render.mjs", nodeModules)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node render.mjs: %v\n%s", err, stderr.String())
	}
	var ref []struct {
		Out   *string `json:"out"`
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl, err := Parse(in[i].Template)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := tpl.Render(c.vars)
			if ref[i].Error != nil {
				if !errors.Is(err, ErrRaised) || !strings.Contains(err.Error(), *ref[i].Error) {
					t.Errorf("Render error = %v, want raise_exception(%q)", err, *ref[i].Error)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != *ref[i].Out {
				t.Errorf("Render mismatch\n got %q\nwant %q", got, *ref[i].Out)
			}
		})
	}
}

// TestPythonSemantics checks behaviour where Python's Jinja (which
// transformers uses) and @huggingface/jinja differ; this package follows
// Python.
func TestPythonSemantics(t *testing.T) {
	tests := []struct {
		src  string
		vars map[string]any
		want string
	}{
		{"{{ 'a,b'.split(',') }}", nil, "['a', 'b']"},
		{"{{ true }} {{ none }} {{ 1.0 }}", nil, "True None 1.0"},
		{"{{ '--x--'.lstrip('-') }}|{{ '--x--'.rstrip('-') }}|{{ 'xxhixx'.strip('x') }}", nil, "x--|--x|hi"},
		{"{{ 'a' ~ none }}", nil, "aNone"},
		{"{{ {'k': [1, 'v']} }}", nil, "{'k': [1, 'v']}"},
		{"{%+ if true %}  x{% endif %}", nil, "  x"},
		{"  {% if true %}\nx\n  {% endif %}\n", nil, "x\n"},
		{"{{ x.y }}|{{ x is defined }}", nil, "|False"},
		{"{% for a, b in pairs %}{{ a }}{{ b }}{% endfor %}", map[string]any{"pairs": []any{[]any{1, 2}, []any{3, 4}}}, "1234"},
		{"{{ 'é' | tojson }} {{ [1, 2] | tojson(indent=2) }}", nil, "\"é\" [\n  1,\n  2\n]"},
	}
	for _, tc := range tests {
		tpl, err := Parse(tc.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.src, err)
			continue
		}
		got, err := tpl.Render(tc.vars)
		if err != nil || got != tc.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}

// TestErrors checks that bad templates fail with an error, not a panic.
func TestErrors(t *testing.T) {
	for _, src := range []string{
		"{% if x %}", "{% for %}", "{{ 1 + }}", "{{ 'unterminated }}", "{% endfor %}", "{{ x | nosuchfilter }}",
		"{% set %}", "{{ (1, 2 }}", "{{ a[ }}", "{% unknown %}", "{{ 1 / 0 }}", "{{ range(10000000) | length }}",
		"{{ raise_exception('boom') }}", "{% for x in 5 %}{% endfor %}",
	} {
		tpl, err := Parse(src)
		if err == nil {
			_, err = tpl.Render(nil)
		}
		if err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}

func FuzzRender(f *testing.F) {
	for _, s := range []string{"{{ x }}", "{% for m in messages %}{{ m.role }}{% endfor %}", "{%- if a -%} b {%- endif %}", "{{ 'a'[::-1] }}", "{{ x | tojson }}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tpl, err := Parse(src)
		if err != nil {
			return
		}
		_, _ = tpl.Render(map[string]any{"messages": msgs("user", "hi", "assistant", "yo"), "x": "s", "a": true})
	})
}
