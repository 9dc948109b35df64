// Package tokenizer implements Hugging Face tokenizers in pure Go: it reads
// a model's tokenizer.json (and tokenizer_config.json) and encodes text to
// token ids and back exactly as the Rust and JavaScript tokenizers
// libraries do, for byte-level BPE (GPT-2, Llama 3, Qwen) and
// SentencePiece-style BPE (Llama 2, Mistral). It also renders the model's
// Jinja2 chat template.
package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gantryml/gantry/internal/chattemplate"
)

// ErrUnsupported is wrapped by errors for tokenizer.json components this
// package does not implement.
var ErrUnsupported = errors.New("unsupported tokenizer component")

// maxID bounds token ids so that a hostile file cannot make VocabSize (and
// the tables sized by it) huge.
const maxID = 1<<24 - 1

// Message is one chat message for ApplyChatTemplate.
type Message struct {
	Role    string
	Content string
}

// Tokenizer encodes text to token ids and decodes ids to text. It is safe
// for concurrent use.
type Tokenizer struct {
	model     *bpe
	idToToken []string // by id, "" where no token has that id
	hasID     []bool
	added     map[int]*addedToken
	addedIDs  map[string]int
	rawSplit  *addedMatcher // added tokens matched on raw text
	normSplit *addedMatcher // added tokens matched on normalized text

	normalizer normalizer
	pre        preTokenizer
	fast       *byteLevelFast // nil: use pre and the model word by word
	post       postProcessor
	dec        decoder
	byteLevelD bool // decoder is ByteLevel at the top: added tokens pass through verbatim

	bos, eos, pad, unk int // -1: none
	chatTemplate       string
	tmpl               *chattemplate.Template
	tmplErr            error
	bosText, eosText   string
	maxLength          int
	kind               string
}

// addedToken is an entry of tokenizer.json's added_tokens.
type addedToken struct {
	id         int
	content    string
	special    bool
	normalized bool
	lstrip     bool
	rstrip     bool
	singleWord bool
}

// Load reads dir/tokenizer.json and, when present, dir/tokenizer_config.json,
// dir/special_tokens_map.json (for special tokens the config lacks) and
// dir/chat_template.jinja (when the config has no chat_template).
func Load(dir string) (*Tokenizer, error) {
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	cj, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(tj, cj)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer from %s: %w", dir, err)
	}
	if sm, err := os.ReadFile(filepath.Join(dir, "special_tokens_map.json")); err == nil {
		var c tokenizerConfig
		if err := json.Unmarshal(sm, &c); err != nil {
			return nil, fmt.Errorf("load tokenizer: special_tokens_map.json: %w", err)
		}
		t.fillSpecial(&c, false)
	}
	if t.chatTemplate == "" {
		if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
			t.setChatTemplate(string(b))
		}
	}
	return t, nil
}

// Parse builds a Tokenizer from the contents of tokenizer.json and of
// tokenizer_config.json; configJSON may be nil.
func Parse(tokenizerJSON, configJSON []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if len(f.Model.Vocab) == 0 {
		return nil, errors.New("tokenizer.json: no model.vocab")
	}
	m, err := newBPE(f.Model)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	t := &Tokenizer{model: m, added: map[int]*addedToken{}, addedIDs: map[string]int{}, bos: -1, eos: -1, pad: -1, unk: m.unk}
	if t.normalizer, err = newNormalizer(f.Normalizer, "normalizer"); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if t.pre, err = newPreTokenizer(f.PreTokenizer, "pre_tokenizer"); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if t.dec, err = newDecoder(f.Decoder, "decoder"); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	_, t.byteLevelD = t.dec.(byteLevelDec)

	maxSeen := -1
	for _, id := range m.vocab {
		maxSeen = max(maxSeen, id)
	}
	for i, a := range f.AddedTokens {
		if a.ID < 0 || a.ID > maxID {
			return nil, fmt.Errorf("tokenizer.json: added_tokens[%d]: id %d out of range", i, a.ID)
		}
		if a.Content == "" {
			return nil, fmt.Errorf("tokenizer.json: added_tokens[%d]: empty content", i)
		}
		maxSeen = max(maxSeen, a.ID)
	}
	// Ids index tables, so a file must not name an id far beyond its number
	// of tokens (real vocabularies are dense).
	if n := len(m.vocab) + len(f.AddedTokens); maxSeen >= 2*n+1024 {
		return nil, fmt.Errorf("tokenizer.json: largest id %d is implausible for %d tokens", maxSeen, n)
	}
	t.idToToken = make([]string, maxSeen+1)
	t.hasID = make([]bool, maxSeen+1)
	for tok, id := range m.vocab {
		t.idToToken[id], t.hasID[id] = tok, true
	}
	var raw, normed []*addedToken
	for _, a := range f.AddedTokens {
		at := &addedToken{id: a.ID, content: a.Content, special: a.Special, lstrip: a.LStrip, rstrip: a.RStrip, singleWord: a.SingleWord}
		at.normalized = !a.Special
		if a.Normalized != nil {
			at.normalized = *a.Normalized
		}
		t.added[a.ID] = at
		t.addedIDs[a.Content] = a.ID
		t.idToToken[a.ID], t.hasID[a.ID] = a.Content, true
		if at.normalized && t.normalizer != nil {
			normed = append(normed, at)
		} else {
			raw = append(raw, at)
		}
	}
	t.rawSplit = newAddedMatcher(raw, nil)
	t.normSplit = newAddedMatcher(normed, t.normalizer)
	if t.post, err = newPostProcessor(f.PostProcessor, "post_processor"); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if err := t.checkPostIDs(t.post); err != nil {
		return nil, err
	}
	t.kind = kindOf(m, t.pre, t.dec)
	t.fast = newByteLevelFast(t.pre, m)

	if len(bytes.TrimSpace(configJSON)) > 0 {
		var c tokenizerConfig
		d := json.NewDecoder(bytes.NewReader(configJSON))
		d.UseNumber()
		if err := d.Decode(&c); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: %w", err)
		}
		t.fillSpecial(&c, true)
		t.applyAddBOSEOS(&c)
		t.maxLength, _ = parseMaxLength(c.ModelMaxLength)
		ct, err := chatTemplateOf(c.ChatTemplate)
		if err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: %w", err)
		}
		t.setChatTemplate(ct)
	}
	t.defaultSpecial()
	return t, nil
}

// checkPostIDs checks that every id a post-processor adds names a token.
func (t *Tokenizer) checkPostIDs(p postProcessor) error {
	switch v := p.(type) {
	case templatePost:
		for _, it := range v.items {
			for _, id := range it {
				if id >= len(t.idToToken) || !t.hasID[id] {
					return fmt.Errorf("tokenizer.json: post_processor uses id %d, which has no token", id)
				}
			}
		}
	case postSeq:
		for _, q := range v {
			if err := t.checkPostIDs(q); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillSpecial takes bos/eos/pad/unk from a config; entries already set
// stay unless override.
func (t *Tokenizer) fillSpecial(c *tokenizerConfig, override bool) {
	set := func(dst *int, text *string, f specialField) {
		if !f.set || (!override && *dst >= 0) {
			return
		}
		if f.null {
			*dst = -2 // explicitly none: no fallback
			return
		}
		if id, ok := t.TokenID(f.content); ok {
			*dst = id
			if text != nil {
				*text = f.content
			}
		}
	}
	set(&t.bos, &t.bosText, c.BOS)
	set(&t.eos, &t.eosText, c.EOS)
	set(&t.pad, nil, c.PAD)
	set(&t.unk, nil, c.UNK)
}

// applyAddBOSEOS honours add_bos_token and add_eos_token for the
// tokenizer classes whose fast versions in transformers rebuild their
// post-processor from them (Llama, CodeLlama, Gemma): the single-sequence
// template becomes [BOS] text [EOS] as those flags say. Other classes keep
// the post-processor of tokenizer.json, as the tokenizers libraries do.
func (t *Tokenizer) applyAddBOSEOS(c *tokenizerConfig) {
	switch strings.TrimSuffix(c.TokenizerClass, "Fast") {
	case "LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer":
	default:
		return
	}
	if c.AddBOSToken == nil && c.AddEOSToken == nil {
		return
	}
	addBOS := c.AddBOSToken == nil || *c.AddBOSToken // transformers' defaults
	addEOS := c.AddEOSToken != nil && *c.AddEOSToken
	var p templatePost
	if addBOS && t.bos >= 0 {
		p.items = append(p.items, []int{t.bos})
	}
	p.items = append(p.items, nil)
	if addEOS && t.eos >= 0 {
		p.items = append(p.items, []int{t.eos})
	}
	t.post = p
}

// defaultSpecial fills BOS and EOS the config did not mention: BOS from a
// post-processor template that starts with a special token, else from
// well-known token names; EOS from well-known names.
func (t *Tokenizer) defaultSpecial() {
	if t.bos == -1 {
		if tp, ok := firstTemplate(t.post); ok && len(tp.items) > 0 && tp.items[0] != nil && len(tp.items[0]) == 1 {
			t.bos = tp.items[0][0]
		}
	}
	pick := func(dst *int, text *string, names ...string) {
		if *dst != -1 {
			return
		}
		for _, n := range names {
			if id, ok := t.TokenID(n); ok {
				*dst = id
				if text != nil {
					*text = n
				}
				return
			}
		}
	}
	pick(&t.bos, &t.bosText, "<s>", "<|begin_of_text|>", "<bos>", "<|endoftext|>")
	pick(&t.eos, &t.eosText, "</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>")
	if t.bos >= 0 && t.bosText == "" {
		t.bosText = t.idToToken[t.bos]
	}
	if t.eos >= 0 && t.eosText == "" {
		t.eosText = t.idToToken[t.eos]
	}
}

func firstTemplate(p postProcessor) (templatePost, bool) {
	switch v := p.(type) {
	case templatePost:
		return v, true
	case postSeq:
		for _, q := range v {
			if tp, ok := firstTemplate(q); ok {
				return tp, true
			}
		}
	}
	return templatePost{}, false
}

// chatTemplateOf reads chat_template: a string, or a list of named
// templates of which "default" is taken.
func chatTemplateOf(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("chat_template: want a string or a list of {name, template}: %w", err)
	}
	for _, e := range list {
		if e.Name == "default" {
			return e.Template, nil
		}
	}
	return "", nil
}

func (t *Tokenizer) setChatTemplate(s string) {
	t.chatTemplate = s
	t.tmpl, t.tmplErr = nil, nil
	if s != "" {
		t.tmpl, t.tmplErr = chattemplate.Parse(s)
	}
}

func kindOf(m *bpe, pre preTokenizer, dec decoder) string {
	byteLevel := false
	var walk func(p preTokenizer)
	walk = func(p preTokenizer) {
		switch v := p.(type) {
		case byteLevelPre:
			byteLevel = true
		case preSeq:
			for _, q := range v {
				walk(q)
			}
		}
	}
	walk(pre)
	switch {
	case byteLevel:
		return "byte-level BPE"
	case m.byteFallback:
		return "SentencePiece BPE (byte fallback)"
	}
	if _, ok := pre.(metaspacePre); ok {
		return "SentencePiece BPE"
	}
	if _, ok := dec.(decoderSeq); ok {
		return "SentencePiece BPE"
	}
	return "BPE"
}

// Encode returns the token ids of text. With addSpecial the special tokens
// of the post-processor (such as a BOS) are added, as Hugging Face's
// add_special_tokens=True does; for Llama-class tokenizers the config's
// add_bos_token and add_eos_token decide, as in transformers. Special
// tokens written in the text are always recognised. Invalid UTF-8 is
// encoded byte by byte where the vocabulary allows (byte-level BPE, byte
// fallback).
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	ids := make([]int, 0, len(text)/3+4)
	var words []string
	for _, sec := range t.rawSplit.split(text) {
		if sec.id >= 0 {
			ids = append(ids, sec.id)
			continue
		}
		s := sec.text
		if t.normalizer != nil {
			s = t.normalizer.normalize(s)
		}
		if s == "" {
			continue
		}
		for j, sub := range t.normSplit.split(s) {
			if sub.id >= 0 {
				ids = append(ids, sub.id)
				continue
			}
			if sub.text == "" {
				continue
			}
			if t.fast != nil {
				ids, words = t.fast.encode(ids, t.model, sub.text, words)
				continue
			}
			words = append(words[:0], sub.text)
			if t.pre != nil {
				words = t.pre.preTokenize(words, sec.start == 0 && j == 0)
			}
			for _, w := range words {
				ids = t.model.encodeWord(ids, w)
			}
		}
	}
	if t.post != nil {
		ids = t.post.process(ids, addSpecial)
	}
	return ids
}

// Decode returns the text of ids. With skipSpecial, special tokens are
// left out. Ids that name no token are skipped.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	toks := make([]string, 0, len(ids))
	var out strings.Builder
	flush := func() {
		if len(toks) == 0 {
			return
		}
		if t.dec == nil {
			out.WriteString(strings.Join(toks, " "))
		} else {
			for _, s := range t.dec.decodeChain(toks) {
				out.WriteString(s)
			}
		}
		toks = toks[:0]
	}
	for _, id := range ids {
		if id < 0 || id >= len(t.idToToken) || !t.hasID[id] {
			continue
		}
		a := t.added[id]
		if a != nil && a.special && skipSpecial {
			continue
		}
		if a != nil && t.byteLevelD {
			// Added tokens are text, not byte-level symbols.
			flush()
			out.WriteString(a.content)
			continue
		}
		toks = append(toks, t.idToToken[id])
	}
	flush()
	return out.String()
}

// VocabSize returns the largest token id plus one, added tokens included.
func (t *Tokenizer) VocabSize() int { return len(t.idToToken) }

// TokenID returns the id of a token string (a vocabulary entry or an added
// token, in its tokenizer.json spelling).
func (t *Tokenizer) TokenID(token string) (int, bool) {
	if id, ok := t.addedIDs[token]; ok {
		return id, true
	}
	id, ok := t.model.vocab[token]
	return id, ok
}

// Token returns the string of token id, and false if no token has it.
func (t *Tokenizer) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.idToToken) || !t.hasID[id] {
		return "", false
	}
	return t.idToToken[id], true
}

func idOK(id int) (int, bool) {
	if id < 0 {
		return 0, false
	}
	return id, true
}

// BOS returns the beginning-of-sequence token: tokenizer_config.json's
// bos_token, else the special token the post-processor puts first, else a
// well-known name. A config that sets bos_token to null has none.
func (t *Tokenizer) BOS() (int, bool) { return idOK(t.bos) }

// EOS returns the end-of-sequence token: tokenizer_config.json's eos_token,
// else a well-known name (</s>, <|end_of_text|>, <eos>, <|endoftext|>).
func (t *Tokenizer) EOS() (int, bool) { return idOK(t.eos) }

// PAD returns tokenizer_config.json's pad_token.
func (t *Tokenizer) PAD() (int, bool) { return idOK(t.pad) }

// UNK returns the unknown token, if the model or config has one.
func (t *Tokenizer) UNK() (int, bool) { return idOK(t.unk) }

// ModelMaxLength returns tokenizer_config.json's model_max_length, and
// false when it is absent or the "no limit" placeholder (1e30).
func (t *Tokenizer) ModelMaxLength() (int, bool) { return t.maxLength, t.maxLength > 0 }

// Kind describes the tokenizer family, e.g. "byte-level BPE" or
// "SentencePiece BPE (byte fallback)".
func (t *Tokenizer) Kind() string { return t.kind }

// IsSpecial reports whether id is an added token marked special.
func (t *Tokenizer) IsSpecial(id int) bool {
	a := t.added[id]
	return a != nil && a.special
}

// SpecialIDs returns the ids of all special added tokens, ascending.
func (t *Tokenizer) SpecialIDs() []int {
	var ids []int
	for id, a := range t.added {
		if a.special {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}

// ChatTemplate returns the Jinja2 chat template source, "" when none.
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// ErrNoChatTemplate is returned by ApplyChatTemplate when the tokenizer
// has no chat template.
var ErrNoChatTemplate = errors.New("tokenizer has no chat template")

// ApplyChatTemplate renders the chat template over msgs, as transformers'
// apply_chat_template(msgs, tokenize=False, add_generation_prompt=...)
// does.
func (t *Tokenizer) ApplyChatTemplate(msgs []Message, addGenerationPrompt bool) (string, error) {
	return t.RenderChat(msgs, ChatOptions{AddGenerationPrompt: addGenerationPrompt})
}

// ChatOptions are the inputs of RenderChat besides the messages.
type ChatOptions struct {
	// AddGenerationPrompt appends the header that starts an assistant turn.
	AddGenerationPrompt bool
	// Vars are extra template variables, such as "enable_thinking" (Qwen3)
	// or "tools"; values are Go strings, numbers, bools, []any and
	// map[string]any.
	Vars map[string]any
}

// RenderChat renders the chat template over msgs. The template sees
// messages, add_generation_prompt, bos_token, eos_token, pad_token and
// unk_token, then opt.Vars. It returns ErrNoChatTemplate when the
// tokenizer has none, and the template's raise_exception message as an
// error.
func (t *Tokenizer) RenderChat(msgs []Message, opt ChatOptions) (string, error) {
	if t.chatTemplate == "" {
		return "", ErrNoChatTemplate
	}
	if t.tmplErr != nil {
		return "", fmt.Errorf("chat template: %w", t.tmplErr)
	}
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	vars := map[string]any{
		"messages":              list,
		"add_generation_prompt": opt.AddGenerationPrompt,
		"bos_token":             t.bosText,
		"eos_token":             t.eosText,
	}
	if tok, ok := t.Token(t.pad); ok {
		vars["pad_token"] = tok
	}
	if tok, ok := t.Token(t.unk); ok {
		vars["unk_token"] = tok
	}
	for k, v := range opt.Vars {
		vars[k] = v
	}
	s, err := t.tmpl.Render(vars)
	if err != nil {
		return "", fmt.Errorf("chat template: %w", err)
	}
	return s, nil
}
