package train

import (
	"context"
	"fmt"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// Run loads the base model and its tokenizer from opt.ModelDir and
// fine-tunes it (see RunModel).
func Run(ctx context.Context, opt Options) (*Result, error) {
	if opt.ModelDir == "" {
		return nil, fmt.Errorf("no base model directory given")
	}
	m, err := model.Load(opt.ModelDir)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	tok, err := tokenizer.Load(opt.ModelDir)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	opt.ownsWeights = true // m is closed when the run ends
	return RunModel(ctx, &m.Config, &m.Weights, FromTokenizer(tok), opt)
}

// FromTokenizer adapts a tokenizer to the dataset reader: it implements
// ChatTemplater when the tokenizer has a chat template.
func FromTokenizer(t *tokenizer.Tokenizer) Tokenizer {
	if t.ChatTemplate() == "" {
		return plainTokenizer{t}
	}
	return chatTokenizer{plainTokenizer{t}}
}

type plainTokenizer struct{ t *tokenizer.Tokenizer }

func (p plainTokenizer) Encode(s string, addSpecial bool) []int { return p.t.Encode(s, addSpecial) }
func (p plainTokenizer) BOS() (int, bool)                       { return p.t.BOS() }
func (p plainTokenizer) EOS() (int, bool)                       { return p.t.EOS() }

type chatTokenizer struct{ plainTokenizer }

func (c chatTokenizer) RenderChat(msgs []Message, gen bool) (string, error) {
	tm := make([]tokenizer.Message, len(msgs))
	for i, m := range msgs {
		tm[i] = tokenizer.Message{Role: m.Role, Content: m.Content}
	}
	return c.t.ApplyChatTemplate(tm, gen)
}
