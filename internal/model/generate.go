package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// Decoder turns token ids back into text; generation needs one only for
// stop sequences. The tokenizer package's Tokenizer satisfies it.
type Decoder interface {
	Decode(ids []int, skipSpecial bool) string
}

// GenerateOptions control sampling. The zero value decodes greedily until
// an end-of-sequence token or the model's context is full.
type GenerateOptions struct {
	// MaxTokens bounds the number of generated tokens; 0 means until the
	// context (max_position_embeddings) is full.
	MaxTokens int
	// Temperature divides the logits before sampling; 0 means greedy
	// (argmax, ties to the lowest id).
	Temperature float64
	// TopK keeps the K most likely tokens (0: all).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches P (0 or 1: all).
	TopP float64
	// Seed seeds the sampler: the same seed, prompt and options give the
	// same tokens.
	Seed uint64
	// EOS lists the token ids that end generation (not included in the
	// output). Nil means the model's: generation_config.json's
	// eos_token_id, else config.json's.
	EOS []int
	// Stop lists texts that end generation once the decoded output
	// contains one; Decoder must then be set. The token completing the
	// stop text is included; TrimStop cuts the text itself.
	Stop    []string
	Decoder Decoder
	// OnToken, when set, is called with each generated token as soon as it
	// is chosen (row is the prompt's index); an error stops generation and
	// is returned.
	OnToken func(row, id int) error
}

// ErrGenerate is wrapped by errors about generation options.
var ErrGenerate = errors.New("invalid generation request")

// Generate continues prompt and returns the generated token ids (without
// the prompt and without the end-of-sequence token).
func (m *Model) Generate(ctx context.Context, prompt []int, opts GenerateOptions) ([]int, error) {
	out, err := m.GenerateBatch(ctx, [][]int{prompt}, opts)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// GenerateBatch continues several prompts at once: they are left-padded to
// the longest, prefilled together and decoded with one KV cache. Each
// row's logits are those it would get alone, so greedy outputs equal
// Generate's; when sampling, row b draws from its own generator seeded by
// Seed and b (row 0 thus matches Generate).
func (m *Model) GenerateBatch(ctx context.Context, prompts [][]int, opts GenerateOptions) ([][]int, error) {
	B := len(prompts)
	if B == 0 {
		return nil, fmt.Errorf("%w: no prompts", ErrGenerate)
	}
	if opts.Temperature < 0 || math.IsNaN(opts.Temperature) || opts.TopK < 0 || opts.TopP < 0 || opts.TopP > 1 || opts.MaxTokens < 0 {
		return nil, fmt.Errorf("%w: temperature %g, top_k %d, top_p %g, max tokens %d", ErrGenerate, opts.Temperature, opts.TopK, opts.TopP, opts.MaxTokens)
	}
	if len(opts.Stop) > 0 && opts.Decoder == nil {
		return nil, fmt.Errorf("%w: stop sequences need a decoder", ErrGenerate)
	}
	T := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("%w: prompt %d is empty", ErrGenerate, i)
		}
		T = max(T, len(p))
	}
	ctxLen := m.Config.MaxPositionEmbeddings
	if T >= ctxLen {
		return nil, fmt.Errorf("%w: prompt of %d tokens fills the %d-token context", ErrGenerate, T, ctxLen)
	}
	maxNew := ctxLen - T
	if opts.MaxTokens > 0 && opts.MaxTokens < maxNew {
		maxNew = opts.MaxTokens
	}
	eos := opts.EOS
	if eos == nil {
		eos = m.Generation.EOSTokenID
		if len(eos) == 0 {
			eos = m.Config.EOSTokenID
		}
	}
	isEOS := map[int]bool{}
	for _, id := range eos {
		isEOS[id] = true
	}

	// The cache starts small and doubles as generation goes on, so a large
	// context costs memory only when it is used.
	cache, err := m.NewCache(B, T+min(maxNew, 256))
	if err != nil {
		return nil, err
	}
	tokens := make([]int, B*T)
	valid := make([]bool, B*T)
	for b, p := range prompts {
		off := T - len(p)
		for t, id := range p {
			tokens[b*T+off+t] = id
			valid[b*T+off+t] = true
		}
	}
	logits, err := m.Forward(ctx, cache, tokens, valid, B, T, true)
	if err != nil {
		return nil, err
	}
	V := m.Config.VocabSize
	rngs := make([]*rand.Rand, B)
	for b := range rngs {
		rngs[b] = rand.New(rand.NewPCG(opts.Seed, uint64(b)))
	}
	out := make([][]int, B)
	done := make([]bool, B)
	left := B
	scratch := newSampler(V)
	next := make([]int, B)
	stepValid := make([]bool, B)
	for step := 0; step < maxNew && left > 0; step++ {
		for b := 0; b < B; b++ {
			next[b], stepValid[b] = 0, false
			if done[b] {
				continue
			}
			id := scratch.sample(logits[b*V:(b+1)*V], opts, rngs[b])
			if isEOS[id] {
				done[b], left = true, left-1
				continue
			}
			out[b] = append(out[b], id)
			if opts.OnToken != nil {
				if err := opts.OnToken(b, id); err != nil {
					return out, err
				}
			}
			if len(opts.Stop) > 0 && containsStop(opts.Decoder.Decode(out[b], true), opts.Stop) {
				done[b], left = true, left-1
				continue
			}
			next[b], stepValid[b] = id, true
		}
		if left == 0 || step == maxNew-1 {
			break
		}
		if cache.Len == cache.MaxT {
			if err := cache.Grow(min(2*cache.MaxT, T+maxNew)); err != nil {
				return out, err
			}
		}
		if logits, err = m.Forward(ctx, cache, next, stepValid, B, 1, true); err != nil {
			return out, err
		}
	}
	return out, nil
}

func containsStop(text string, stops []string) bool {
	for _, s := range stops {
		if s != "" && strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// TrimStop cuts text before the earliest occurrence of any stop text and
// reports whether one was found.
func TrimStop(text string, stops []string) (string, bool) {
	cut := -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut < 0 {
		return text, false
	}
	return text[:cut], true
}

// sampler holds scratch space for choosing one token from logits.
type sampler struct {
	idx   []int
	probs []float64
}

func newSampler(V int) *sampler {
	return &sampler{idx: make([]int, V), probs: make([]float64, V)}
}

// sample picks a token from one row of logits [V]: argmax when temperature
// is 0; otherwise softmax(logits / temperature) restricted to the top-k
// tokens and then to the top-p nucleus (as Hugging Face's warpers apply
// them, in that order), sampled with rng.
func (s *sampler) sample(logits []float32, opts GenerateOptions, rng *rand.Rand) int {
	if opts.Temperature == 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	V := len(logits)
	idx := s.idx[:V]
	for i := range idx {
		idx[i] = i
	}
	// Sort by logit descending, ties by id, so the candidate order and thus
	// the draw are deterministic.
	sort.Slice(idx, func(a, b int) bool {
		la, lb := logits[idx[a]], logits[idx[b]]
		if la != lb {
			return la > lb
		}
		return idx[a] < idx[b]
	})
	n := V
	if opts.TopK > 0 && opts.TopK < n {
		n = opts.TopK
	}
	probs := s.probs[:n]
	maxL := float64(logits[idx[0]]) / opts.Temperature
	var sum float64
	for i := 0; i < n; i++ {
		p := math.Exp(float64(logits[idx[i]])/opts.Temperature - maxL)
		probs[i] = p
		sum += p
	}
	if opts.TopP > 0 && opts.TopP < 1 {
		var cum float64
		for i := 0; i < n; i++ {
			cum += probs[i] / sum
			if cum >= opts.TopP {
				n = i + 1
				break
			}
		}
		sum = 0
		for i := 0; i < n; i++ {
			sum += probs[i]
		}
	}
	r := rng.Float64() * sum
	for i := 0; i < n; i++ {
		r -= probs[i]
		if r < 0 {
			return idx[i]
		}
	}
	return idx[n-1]
}
