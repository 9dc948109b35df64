package tokenizer

// byteLevelFast encodes for the common byte-level layouts (GPT-2's
// ByteLevel pre-tokenizer with its regex; Llama 3's and Qwen's Split then
// ByteLevel without regex) without building the byte-level strings: words
// are cut from the raw text and their bytes map straight to symbol ids.
// It gives the same ids as the general path (TestFastPathMatchesGeneral).
type byteLevelFast struct {
	split          splitPre
	addPrefixSpace bool
	byteSym        [256]int32
}

// newByteLevelFast returns the fast path for pre and m, or nil when they
// are not one of the layouts it handles.
func newByteLevelFast(pre preTokenizer, m *bpe) *byteLevelFast {
	if m.prefix != "" || m.suffix != "" {
		return nil
	}
	f := &byteLevelFast{}
	switch p := pre.(type) {
	case byteLevelPre:
		if !p.useRegex {
			return nil
		}
		f.split = splitPre{pat: gpt2Matcher{}, behavior: splitIsolated}
		f.addPrefixSpace = p.addPrefixSpace
	case preSeq:
		if len(p) != 2 {
			return nil
		}
		sp, ok1 := p[0].(splitPre)
		bl, ok2 := p[1].(byteLevelPre)
		if !ok1 || !ok2 || bl.useRegex || bl.addPrefixSpace || sp.behavior != splitIsolated || sp.invert {
			return nil
		}
		f.split = sp
	default:
		return nil
	}
	for b := 0; b < 256; b++ {
		id, ok := m.runeIDs[byteToRune[b]]
		if !ok {
			return nil
		}
		f.byteSym[b] = id
	}
	return f
}

// encode appends the ids of one normalized section.
func (f *byteLevelFast) encode(dst []int, m *bpe, s string, words []string) ([]int, []string) {
	if f.addPrefixSpace && (len(s) == 0 || s[0] != ' ') {
		s = " " + s
	}
	words = f.split.split(words[:0], s)
	for _, w := range words {
		dst = f.encodeWord(dst, m, w)
	}
	return dst, words
}

func (f *byteLevelFast) encodeWord(dst []int, m *bpe, w string) []int {
	if w == "" {
		return dst
	}
	if ids, ok := m.rawCache.get(w); ok {
		return appendIDs(dst, ids)
	}
	var ids []int32
	if m.ignoreMerges {
		if id, ok := m.vocab[byteLevelString(w)]; ok {
			ids = []int32{int32(id)}
		}
	}
	if ids == nil {
		syms := make([]int32, len(w))
		for i := 0; i < len(w); i++ {
			syms[i] = f.byteSym[w[i]]
		}
		ids = m.merge(syms)
	}
	m.rawCache.put(w, ids)
	return appendIDs(dst, ids)
}
