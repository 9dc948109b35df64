package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// fileJSON is the part of a Hugging Face tokenizer.json the package reads.
// Components stay raw until the component constructors decode them, so that
// an unsupported type can be reported with its path.
type fileJSON struct {
	Version       string          `json:"version"`
	AddedTokens   []addedJSON     `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         modelJSON       `json:"model"`
}

type addedJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Dropout                 *float64        `json:"dropout"`
}

// component is one component object of tokenizer.json (a normalizer,
// pre-tokenizer, post-processor or decoder): its "type", its whole JSON
// and the path that errors about it name.
type component struct {
	Type string
	raw  json.RawMessage
	path string
}

// readComponent reads the type of the component at path. Null or absent
// JSON means no component: it returns nil and no error.
func readComponent(raw json.RawMessage, path string) (*component, error) {
	if isNull(raw) {
		return nil, nil
	}
	var t struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &component{Type: t.Type, raw: raw, path: path}, nil
}

// decode unmarshals the whole component into v, the error naming its path.
func (c *component) decode(v any) error {
	if err := json.Unmarshal(c.raw, v); err != nil {
		return fmt.Errorf("%s: %w", c.path, err)
	}
	return nil
}

// buildSeq builds the members of a Sequence component, listed at path,
// with build; null members are left out.
func buildSeq[T any](members []json.RawMessage, path string, build func(json.RawMessage, string) (T, error)) ([]T, error) {
	var seq []T
	for i, r := range members {
		m, err := build(r, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		if any(m) != nil { // T is an interface; nil means a null member
			seq = append(seq, m)
		}
	}
	return seq, nil
}

// patternJSON is a Split/Replace pattern: {"String": "..."} or {"Regex": "..."}.
type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// tokenizerConfig is the part of tokenizer_config.json (or special_tokens_map.json)
// the package reads.
type tokenizerConfig struct {
	BOS            specialField    `json:"bos_token"`
	EOS            specialField    `json:"eos_token"`
	PAD            specialField    `json:"pad_token"`
	UNK            specialField    `json:"unk_token"`
	ChatTemplate   json.RawMessage `json:"chat_template"`
	AddBOSToken    *bool           `json:"add_bos_token"`
	AddEOSToken    *bool           `json:"add_eos_token"`
	ModelMaxLength json.Number     `json:"model_max_length"`
	TokenizerClass string          `json:"tokenizer_class"`
}

// specialField is a special-token entry of tokenizer_config.json: absent,
// null, a string, or an AddedToken object {"content": ...}.
type specialField struct {
	set     bool   // the key was present
	null    bool   // its value was null
	content string // the token text
}

func (f *specialField) UnmarshalJSON(b []byte) error {
	f.set = true
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		f.null = true
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &f.content)
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("special token: want a string or an object with content: %w", err)
	}
	if obj.Content == nil {
		return errors.New("special token object has no content")
	}
	f.content = *obj.Content
	return nil
}

// merge apply: the two halves of one BPE merge rule.
type mergePair struct{ a, b string }

// cutSpace splits a legacy "a b" merge at its first space, as the Rust
// library does.
func cutSpace(s string) (a, b string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], i > 0 && i+1 < len(s)
		}
	}
	return "", "", false
}

// parseMaxLength reads model_max_length, which configs write as an integer
// that may not fit in 64 bits (1000000000000000019884624838656 means "no
// limit") or as a float.
func parseMaxLength(n json.Number) (int, bool) {
	if n == "" {
		return 0, false
	}
	if v, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		if v <= 0 || v > 1<<40 {
			return 0, false
		}
		return int(v), true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > 1<<40 {
		return 0, false
	}
	return int(f), true
}
