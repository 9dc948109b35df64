// Package train fine-tunes a model on a JSON Lines dataset: it reads and
// tokenizes the examples, runs the optimisation loop with OCI's metric,
// logging and early-stopping rules, checkpoints and resumes, and writes the
// result as an adapter (internal/peft). It imports no service package: the
// server's job and `gantry train` both call Run.
package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Tokenizer is what the dataset reader needs from a tokenizer;
// *tokenizer.Tokenizer satisfies it.
type Tokenizer interface {
	// Encode returns the ids of text, with the tokenizer's special tokens
	// (BOS) when addSpecial is true.
	Encode(text string, addSpecial bool) []int
	BOS() (int, bool)
	EOS() (int, bool)
}

// ChatTemplater renders chat messages with a model's chat template; a
// Tokenizer that also implements it can read chat ("messages") datasets.
type ChatTemplater interface {
	RenderChat(msgs []Message, addGenerationPrompt bool) (string, error)
}

// Message is one turn of a chat example.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Example is one tokenized training example. Tokens is the whole sequence
// (BOS, prompt, completion, EOS); Trained[i] says whether predicting
// Tokens[i] from Tokens[:i] counts in the loss. The network is fed
// Tokens[:len-1] with targets Tokens[1:].
type Example struct {
	Line    int // 1-based line number in the dataset file
	Tokens  []int32
	Trained []bool
}

// Len is the number of positions the network processes for e.
func (e *Example) Len() int { return len(e.Tokens) - 1 }

// LossTokens is the number of loss-bearing targets of e.
func (e *Example) LossTokens() int {
	n := 0
	for _, t := range e.Trained[1:] {
		if t {
			n++
		}
	}
	return n
}

// MinExamples is the least number of valid examples a dataset must hold.
const MinExamples = 10

// MaxLineBytes bounds one dataset line; a longer line is a bad line.
const MaxLineBytes = 16 << 20

// maxBadLinesKept bounds how many bad lines a DatasetError lists.
const maxBadLinesKept = 1000

// BadLine is one rejected dataset line.
type BadLine struct {
	Line   int    `json:"line"` // 1-based
	Reason string `json:"reason"`
}

// DatasetError reports every bad line of a dataset (the first
// maxBadLinesKept of them in Lines; Count is the total) or too few
// examples. Callers use errors.As to show each line.
type DatasetError struct {
	Lines    []BadLine
	Count    int // number of bad lines, including those not kept in Lines
	Examples int // valid examples found
	TooFew   bool
}

// ErrTooFewExamples is matched (errors.Is) by a DatasetError whose dataset
// has fewer than MinExamples valid examples.
var ErrTooFewExamples = errors.New("too few examples")

// Error lists the bad lines, one per line.
func (e *DatasetError) Error() string {
	var b strings.Builder
	if e.Count > 0 {
		fmt.Fprintf(&b, "dataset has %d bad line(s)", e.Count)
		for _, l := range e.Lines {
			fmt.Fprintf(&b, "\n  line %d: %s", l.Line, l.Reason)
		}
		if e.Count > len(e.Lines) {
			fmt.Fprintf(&b, "\n  ... and %d more", e.Count-len(e.Lines))
		}
	}
	if e.TooFew {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "dataset has %d valid example(s), need at least %d", e.Examples, MinExamples)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrTooFewExamples) true for a too-small dataset.
func (e *DatasetError) Is(target error) bool { return target == ErrTooFewExamples && e.TooFew }

// Dataset is a tokenized dataset.
type Dataset struct {
	Examples  []Example
	Truncated int // examples cut to fit MaxSeqLen
	MaxSeqLen int
}

// ReadOptions say how ReadDataset tokenizes.
type ReadOptions struct {
	// MaxSeqLen bounds an example's length in tokens (BOS and EOS
	// included); at least 2.
	MaxSeqLen int
}

// ReadDataset streams a JSON Lines dataset from r and tokenizes it with tok.
//
// Each non-blank line is either {"prompt": P, "completion": C} (OCI's
// format; other keys ignored) or {"messages": [{"role", "content"}, ...]}
// (chat, which needs tok to implement ChatTemplater).
//
// A prompt/completion example is [BOS if tok adds one] + prompt +
// completion + EOS; the loss covers the completion and EOS. The text
// prompt+completion is tokenized as a whole (as TRL does), so the
// completion's first word gets the tokens it has in running text — a
// SentencePiece tokenizer would otherwise give a separately tokenized
// completion a second word-start marker. The prompt's tokens are the
// longest common prefix of that and the prompt tokenized alone; a token
// straddling the boundary counts as completion. An example longer than MaxSeqLen loses
// the start of its prompt; if the completion alone is too long the prompt
// is dropped and the completion's end is cut (and EOS with it, since the
// text does not end there).
//
// A chat example is the template's rendering of all messages, tokenized
// without added special tokens (templates write their own). Assistant
// turns are found by rendering prefixes: for the assistant message i,
// render(messages[:i], addGenerationPrompt=true) is the text before the
// reply and render(messages[:i+1], false) the text through its end, so the
// reply's span — content and the template's end-of-turn marker — is the
// difference; each such rendering must be a prefix of the next and of the
// whole, or the line is rejected. The whole rendering is tokenized once;
// a span boundary's token index is the longest common prefix of the
// tokens of the text before it and the whole (a token straddling a
// span's start counts as trained, one straddling its end does not). A chat
// example longer than MaxSeqLen keeps the window that ends at the last
// assistant token (dropping the conversation's start), or the start of
// the last assistant span if that alone is too long.
//
// ReadDataset reports every bad line at once as a *DatasetError, and a
// *DatasetError matching ErrTooFewExamples when fewer than MinExamples
// examples remain. Read errors are returned as they are.
func ReadDataset(r io.Reader, tok Tokenizer, opt ReadOptions) (*Dataset, error) {
	if opt.MaxSeqLen < 2 {
		return nil, fmt.Errorf("max sequence length %d: must be at least 2", opt.MaxSeqLen)
	}
	p := parser{tok: tok, max: opt.MaxSeqLen}
	p.chat, _ = tok.(ChatTemplater)
	if bos, ok := tok.BOS(); ok {
		if ids := tok.Encode("a", true); len(ids) > 0 && ids[0] == bos {
			p.bos, p.useBOS = int32(bos), true
		}
	}
	if eos, ok := tok.EOS(); ok {
		p.eos, p.hasEOS = int32(eos), true
	}

	ds := &Dataset{MaxSeqLen: opt.MaxSeqLen}
	derr := &DatasetError{}
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(br, &buf)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read dataset line %d: %w", lineNo, err)
		}
		if len(line) == 0 && !tooLong && err == io.EOF {
			break
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		}
		switch {
		case tooLong:
			derr.add(lineNo, fmt.Sprintf("line longer than %d bytes", MaxLineBytes))
		case len(bytes.TrimSpace(line)) == 0:
			// blank line
		default:
			ex, truncated, reason := p.parse(line)
			if reason != "" {
				derr.add(lineNo, reason)
				break
			}
			ex.Line = lineNo
			ds.Examples = append(ds.Examples, ex)
			if truncated {
				ds.Truncated++
			}
		}
		if err == io.EOF {
			break
		}
	}
	derr.Examples = len(ds.Examples)
	derr.TooFew = len(ds.Examples) < MinExamples
	if derr.Count > 0 || derr.TooFew {
		return nil, derr
	}
	return ds, nil
}

func (e *DatasetError) add(line int, reason string) {
	e.Count++
	if len(e.Lines) < maxBadLinesKept {
		e.Lines = append(e.Lines, BadLine{Line: line, Reason: reason})
	}
}

// readLine returns the next line without its "\n" (and "\r"), reusing
// *buf. A line over MaxLineBytes is skipped up to its end and reported
// with tooLong. err is io.EOF on the last line.
func readLine(br *bufio.Reader, buf *[]byte) (line []byte, tooLong bool, err error) {
	*buf = (*buf)[:0]
	for {
		frag, e := br.ReadSlice('\n')
		if !tooLong {
			if len(*buf)+len(frag) > MaxLineBytes+2 {
				tooLong = true
				*buf = (*buf)[:0]
			} else {
				*buf = append(*buf, frag...)
			}
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		if e != nil && e != io.EOF {
			return nil, false, e
		}
		line = bytes.TrimSuffix(*buf, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if tooLong {
			line = nil
		}
		return line, tooLong, e
	}
}

type parser struct {
	tok    Tokenizer
	chat   ChatTemplater
	max    int
	bos    int32
	useBOS bool
	eos    int32
	hasEOS bool
}

// parse turns one non-blank line into an example, or returns why not.
func (p *parser) parse(line []byte) (ex Example, truncated bool, reason string) {
	if !utf8.Valid(line) {
		return ex, false, "invalid UTF-8"
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return ex, false, "not a JSON object"
		}
		return ex, false, "not valid JSON: " + err.Error()
	}
	if obj == nil {
		return ex, false, "not a JSON object"
	}
	if raw, ok := obj["messages"]; ok {
		if _, ok := obj["prompt"]; ok {
			return ex, false, `has both "messages" and "prompt"`
		}
		if _, ok := obj["completion"]; ok {
			return ex, false, `has both "messages" and "completion"`
		}
		return p.parseChat(raw)
	}
	prompt, reason := stringField(obj, "prompt")
	if reason != "" {
		return ex, false, reason
	}
	completion, reason := stringField(obj, "completion")
	if reason != "" {
		return ex, false, reason
	}
	if strings.TrimSpace(completion) == "" {
		return ex, false, `"completion" is empty`
	}
	ex, truncated = p.promptCompletion(prompt, completion)
	if ex.LossTokens() == 0 {
		return ex, false, "example has no token to predict (too short)"
	}
	return ex, truncated, ""
}

// stringField returns obj[key] as a string, or why it is not one.
func stringField(obj map[string]json.RawMessage, key string) (string, string) {
	raw, ok := obj[key]
	if !ok {
		return "", fmt.Sprintf("missing %q", key)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return "", fmt.Sprintf("%q is not a string", key)
	}
	return s, ""
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// promptCompletion builds and, when needed, truncates a prompt/completion
// example.
func (p *parser) promptCompletion(prompt, completion string) (Example, bool) {
	alone := p.tok.Encode(prompt, false)
	joint := p.tok.Encode(prompt+completion, false)
	k := 0
	for k < len(alone) && k < len(joint) && alone[k] == joint[k] {
		k++
	}
	pt, ct := toInt32(joint[:k]), toInt32(joint[k:])
	if len(ct) == 0 { // cannot happen for a sane tokenizer; keep the completion
		pt, ct = toInt32(alone), toInt32(p.tok.Encode(completion, false))
	}
	head := 0
	if p.useBOS {
		head = 1
	}
	tail := 0
	if p.hasEOS {
		tail = 1
	}
	truncated := false
	if head+len(pt)+len(ct)+tail > p.max {
		truncated = true
		if keep := p.max - head - len(ct) - tail; keep >= 0 {
			pt = pt[len(pt)-keep:]
		} else {
			pt = nil
			ct = ct[:p.max-head]
			tail = 0
		}
	}
	n := head + len(pt) + len(ct) + tail
	ex := Example{Tokens: make([]int32, 0, n), Trained: make([]bool, n)}
	if head == 1 {
		ex.Tokens = append(ex.Tokens, p.bos)
	}
	ex.Tokens = append(ex.Tokens, pt...)
	ex.Tokens = append(ex.Tokens, ct...)
	if tail == 1 {
		ex.Tokens = append(ex.Tokens, p.eos)
	}
	for i := head + len(pt); i < n; i++ {
		ex.Trained[i] = true
	}
	return ex, truncated
}

var chatRoles = map[string]bool{"system": true, "user": true, "assistant": true, "tool": true}

// parseChat builds a chat example (see ReadDataset for the method).
func (p *parser) parseChat(raw json.RawMessage) (ex Example, truncated bool, reason string) {
	if p.chat == nil {
		return ex, false, "chat example, but the model's tokenizer has no chat template"
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return ex, false, `"messages" is not a list of objects`
	}
	if len(items) == 0 {
		return ex, false, `"messages" is empty`
	}
	msgs := make([]Message, len(items))
	assistants := 0
	for i, it := range items {
		if it == nil {
			return ex, false, fmt.Sprintf("message %d is not an object", i+1)
		}
		role, r := stringField(it, "role")
		if r != "" {
			return ex, false, fmt.Sprintf("message %d: %s", i+1, r)
		}
		if !chatRoles[role] {
			return ex, false, fmt.Sprintf("message %d: unknown role %q (want system, user, assistant or tool)", i+1, role)
		}
		content, r := stringField(it, "content")
		if r != "" {
			return ex, false, fmt.Sprintf("message %d: %s", i+1, r)
		}
		if role == "assistant" {
			if strings.TrimSpace(content) == "" {
				return ex, false, fmt.Sprintf("message %d: assistant content is empty", i+1)
			}
			assistants++
		}
		msgs[i] = Message{Role: role, Content: content}
	}
	if assistants == 0 {
		return ex, false, "no assistant message to train on"
	}
	full, err := p.chat.RenderChat(msgs, false)
	if err != nil {
		return ex, false, "chat template: " + err.Error()
	}
	// The whole rendering is tokenized once, as inference tokenizes a
	// rendered prompt; each span's text boundaries become token
	// boundaries through the longest common prefix of the text before the
	// boundary, tokenized alone, with the whole.
	joint := p.tok.Encode(full, false)
	boundary := func(n int) int {
		pre := p.tok.Encode(full[:n], false)
		k := 0
		for k < len(pre) && k < len(joint) && pre[k] == joint[k] {
			k++
		}
		return k
	}
	ex.Tokens = toInt32(joint)
	ex.Trained = make([]bool, len(joint))
	pos := 0
	for i, m := range msgs {
		if m.Role != "assistant" {
			continue
		}
		before, err := p.chat.RenderChat(msgs[:i], true)
		if err != nil {
			return ex, false, "chat template: " + err.Error()
		}
		through, err := p.chat.RenderChat(msgs[:i+1], false)
		if err != nil {
			return ex, false, "chat template: " + err.Error()
		}
		if len(before) < pos || !strings.HasPrefix(through, before) || !strings.HasPrefix(full, through) || !strings.HasPrefix(before, full[:pos]) {
			return ex, false, fmt.Sprintf("message %d: the chat template does not render this assistant turn as a stable prefix", i+1)
		}
		for j := boundary(len(before)); j < boundary(len(through)); j++ {
			ex.Trained[j] = true
		}
		pos = len(through)
	}
	// Position 0 is never predicted.
	if len(ex.Trained) > 0 {
		ex.Trained[0] = false
	}
	last := -1
	for i, t := range ex.Trained {
		if t {
			last = i
		}
	}
	if last < 0 {
		return ex, false, "assistant turns tokenize to nothing"
	}
	end := last + 1
	if len(ex.Tokens) > p.max || end < len(ex.Tokens) {
		// Trailing untrained turns carry no loss: drop them (that alone
		// is not a truncation).
		truncated = end > p.max
		start := max(0, end-p.max)
		if truncated {
			// The last assistant span starts after the last untrained token before it.
			spanStart := last
			for spanStart > 0 && ex.Trained[spanStart-1] {
				spanStart--
			}
			if end-spanStart > p.max {
				start, end = spanStart, spanStart+p.max
			}
		}
		ex.Tokens = ex.Tokens[start:end]
		ex.Trained = ex.Trained[start:end]
		ex.Trained[0] = false
	}
	if len(ex.Tokens) < 2 || ex.LossTokens() == 0 {
		return ex, false, "assistant turns tokenize to nothing"
	}
	return ex, truncated, ""
}
