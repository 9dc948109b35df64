package tokenizer

import (
	"fmt"
	"sync"
	"unicode/utf8"
)

// bpe is the BPE model: a word's runes become symbols (vocabulary ids),
// and adjacent symbols are merged by rank, lowest first and leftmost on
// ties, until no rule applies.
type bpe struct {
	vocab        map[string]int
	runeIDs      map[rune]int32 // ids of single-rune tokens, the common initial symbols
	merges       map[uint64]mergeRule
	unk          int // -1: none
	fuseUnk      bool
	byteFallback bool
	byteIDs      [256]int32 // ids of <0xNN>, -1 when absent
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix

	cache    wordCache // by word as the model sees it
	rawCache wordCache // by raw word, for byteLevelFast
}

// mergeRule is what a pair of symbols merges into, and the rule's rank.
type mergeRule struct {
	rank int32
	id   int32
}

// maxCacheEntries bounds a word cache; it is emptied when full.
const maxCacheEntries = 1 << 17

// maxCachedWord is the longest word (in bytes) kept in a word cache.
const maxCachedWord = 256

// wordCache remembers the ids of words of at most maxCachedWord bytes; it
// starts over when it holds maxCacheEntries. It is safe for concurrent use,
// and its zero value is empty and ready.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

// get returns the ids put for word, if any. The caller must not modify them.
func (c *wordCache) get(word string) ([]int32, bool) {
	if len(word) > maxCachedWord {
		return nil, false
	}
	c.mu.RLock()
	ids, ok := c.m[word]
	c.mu.RUnlock()
	return ids, ok
}

// put remembers ids for word, unless word is too long to cache.
func (c *wordCache) put(word string, ids []int32) {
	if len(word) > maxCachedWord {
		return
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCacheEntries {
		c.m = make(map[string][]int32, 1024)
	}
	c.m[word] = ids
	c.mu.Unlock()
}

// reset empties the cache.
func (c *wordCache) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// appendIDs appends ids to dst as ints.
func appendIDs(dst []int, ids []int32) []int {
	for _, id := range ids {
		dst = append(dst, int(id))
	}
	return dst
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newBPE(m modelJSON) (*bpe, error) {
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("model: %w: model type %q (only BPE is supported)", ErrUnsupported, m.Type)
	}
	if m.Dropout != nil && *m.Dropout > 0 {
		return nil, fmt.Errorf("model: %w: BPE dropout %v", ErrUnsupported, *m.Dropout)
	}
	vocab, err := parseVocab(m.Vocab)
	if err != nil {
		return nil, err
	}
	b := &bpe{
		vocab:        vocab,
		runeIDs:      make(map[rune]int32, 1024),
		unk:          -1,
		fuseUnk:      m.FuseUnk,
		byteFallback: m.ByteFallback,
		ignoreMerges: m.IgnoreMerges,
	}
	if m.ContinuingSubwordPrefix != nil {
		b.prefix = *m.ContinuingSubwordPrefix
	}
	if m.EndOfWordSuffix != nil {
		b.suffix = *m.EndOfWordSuffix
	}
	for tok, id := range vocab {
		if id < 0 || id > maxID {
			return nil, fmt.Errorf("model.vocab[%q] = %d: id out of range", tok, id)
		}
		if r, n := utf8.DecodeRuneInString(tok); n == len(tok) && r != utf8.RuneError {
			b.runeIDs[r] = int32(id)
		}
	}
	for i := range b.byteIDs {
		b.byteIDs[i] = -1
		if id, ok := vocab[fmt.Sprintf("<0x%02X>", i)]; ok {
			b.byteIDs[i] = int32(id)
		}
	}
	if m.UnkToken != nil {
		id, ok := vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("model.unk_token %q is not in the vocabulary", *m.UnkToken)
		}
		b.unk = id
	}
	merges, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	b.merges = make(map[uint64]mergeRule, len(merges))
	for rank, mp := range merges {
		a, ok1 := vocab[mp.a]
		c, ok2 := vocab[mp.b]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("model.merges[%d] = %q %q: token not in the vocabulary", rank, mp.a, mp.b)
		}
		right := mp.b
		if b.prefix != "" && len(right) >= len(b.prefix) && right[:len(b.prefix)] == b.prefix {
			right = right[len(b.prefix):]
		}
		id, ok := vocab[mp.a+right]
		if !ok {
			return nil, fmt.Errorf("model.merges[%d]: merged token %q is not in the vocabulary", rank, mp.a+right)
		}
		k := pairKey(int32(a), int32(c))
		if _, dup := b.merges[k]; !dup { // the first (lowest-ranked) rule wins
			b.merges[k] = mergeRule{int32(rank), int32(id)}
		}
	}
	return b, nil
}

// encodeWord appends the ids of word to dst.
func (b *bpe) encodeWord(dst []int, word string) []int {
	if word == "" {
		return dst
	}
	if b.ignoreMerges {
		if id, ok := b.vocab[word]; ok {
			return append(dst, id)
		}
	}
	if ids, ok := b.cache.get(word); ok {
		return appendIDs(dst, ids)
	}
	ids := b.merge(b.initialSymbols(word))
	b.cache.put(word, ids)
	return appendIDs(dst, ids)
}

// initialSymbols turns each rune of word into a symbol: its token, or its
// <0xNN> byte tokens (byte_fallback), or the unknown token (fused with a
// preceding unknown under fuse_unk), or nothing when there is no unknown
// token.
func (b *bpe) initialSymbols(word string) []int32 {
	syms := make([]int32, 0, len(word))
	lastUnk := false
	plain := b.prefix == "" && b.suffix == ""
	for i, r := range word {
		w := utf8.RuneLen(r)
		if r == utf8.RuneError {
			_, w = utf8.DecodeRuneInString(word[i:])
		}
		id, ok := int32(-1), false
		if plain && r != utf8.RuneError {
			id, ok = b.runeIDs[r]
		} else {
			s := word[i : i+w]
			if i > 0 {
				s = b.prefix + s
			}
			if i+w == len(word) {
				s += b.suffix
			}
			var v int
			v, ok = b.vocab[s]
			id = int32(v)
		}
		if ok {
			syms = append(syms, id)
			lastUnk = false
			continue
		}
		if b.byteFallback {
			all := true
			for k := i; k < i+w; k++ {
				if b.byteIDs[word[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				for k := i; k < i+w; k++ {
					syms = append(syms, b.byteIDs[word[k]])
				}
				lastUnk = false
				continue
			}
		}
		if b.unk >= 0 {
			if !(b.fuseUnk && lastUnk) {
				syms = append(syms, int32(b.unk))
			}
			lastUnk = true
		}
	}
	return syms
}

// mergeItem is a candidate merge of the symbol at pos with its successor.
type mergeItem struct {
	rank, pos, id int32
}

func (a mergeItem) less(b mergeItem) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// merge applies the merge rules to syms (in place) and returns the result.
// Symbols form a doubly linked list over the slice; a heap holds candidate
// merges ordered by (rank, position), and stale candidates are skipped when
// popped.
func (b *bpe) merge(syms []int32) []int32 {
	n := len(syms)
	if n < 2 || len(b.merges) == 0 {
		return syms
	}
	prev := make([]int32, n)
	next := make([]int32, n)
	alive := make([]bool, n)
	var heap []mergeItem
	push := func(it mergeItem) {
		heap = append(heap, it)
		for i := len(heap) - 1; i > 0; {
			p := (i - 1) / 2
			if !heap[i].less(heap[p]) {
				break
			}
			heap[i], heap[p] = heap[p], heap[i]
			i = p
		}
	}
	pop := func() mergeItem {
		top := heap[0]
		last := len(heap) - 1
		heap[0] = heap[last]
		heap = heap[:last]
		for i := 0; ; {
			l, r, m := 2*i+1, 2*i+2, i
			if l < len(heap) && heap[l].less(heap[m]) {
				m = l
			}
			if r < len(heap) && heap[r].less(heap[m]) {
				m = r
			}
			if m == i {
				break
			}
			heap[i], heap[m] = heap[m], heap[i]
			i = m
		}
		return top
	}
	for i := 0; i < n; i++ {
		prev[i], next[i], alive[i] = int32(i-1), int32(i+1), true
		if i+1 < n {
			if r, ok := b.merges[pairKey(syms[i], syms[i+1])]; ok {
				push(mergeItem{r.rank, int32(i), r.id})
			}
		}
	}
	next[n-1] = -1
	for len(heap) > 0 {
		it := pop()
		p := it.pos
		q := next[p]
		if !alive[p] || q < 0 {
			continue
		}
		if r, ok := b.merges[pairKey(syms[p], syms[q])]; !ok || r.id != it.id || r.rank != it.rank {
			continue
		}
		syms[p] = it.id
		alive[q] = false
		next[p] = next[q]
		if nq := next[q]; nq >= 0 {
			prev[nq] = p
			if r, ok := b.merges[pairKey(syms[p], syms[nq])]; ok {
				push(mergeItem{r.rank, p, r.id})
			}
		}
		if pp := prev[p]; pp >= 0 {
			if r, ok := b.merges[pairKey(syms[pp], syms[p])]; ok {
				push(mergeItem{r.rank, pp, r.id})
			}
		}
	}
	out := syms[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}
