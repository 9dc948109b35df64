// Package chattemplate renders the Jinja2 chat templates that Hugging Face
// tokenizer_config.json files carry, with the subset of Jinja that real
// templates use.
package chattemplate

import "errors"

// Template is a parsed chat template.
type Template struct{ src string }

// Parse parses a template's source.
func Parse(src string) (*Template, error) { return &Template{src}, nil }

// Render executes the template with vars as its global variables.
func (t *Template) Render(vars map[string]any) (string, error) {
	return "", errors.New("chattemplate: rendering is not implemented yet")
}
