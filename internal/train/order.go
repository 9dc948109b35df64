package train

import (
	"math/rand/v2"
	"slices"
)

// rng is the trainer's deterministic random source: PCG (whose output
// math/rand/v2 specifies) with our own Fisher–Yates, so orders depend only
// on the seed, never on library internals.
type rng struct{ p *rand.PCG }

// newRNG returns a generator for one purpose ("split", "epoch N") of a run.
func newRNG(seed uint64, stream uint64) rng {
	return rng{rand.NewPCG(seed, 0x9e3779b97f4a7c15^stream)}
}

// intn returns a uniform integer in [0, n) by rejection sampling.
func (r rng) intn(n int) int {
	un := uint64(n)
	limit := ^uint64(0) - (^uint64(0)%un+1)%un
	for {
		v := r.p.Uint64()
		if v <= limit {
			return int(v % un)
		}
	}
}

// shuffle permutes s in place (Fisher–Yates).
func shuffle[T any](r rng, s []T) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}

const (
	streamSplit  = 1
	streamEpoch0 = 1000
)

// Split returns the indices of the training and validation examples of n:
// n_train = floor(0.8·n) after a shuffle with seed, or in file order when
// shuffle is false.
func Split(n int, seed uint64, shuffleOn bool) (trainIdx, valIdx []int) {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if shuffleOn {
		shuffle(newRNG(seed, streamSplit), idx)
	}
	nt := n * 8 / 10
	return idx[:nt], idx[nt:]
}

// groupWindow is how many batches' worth of examples are sorted by length
// together when batches are grouped by length.
const groupWindow = 50

// EpochBatches returns one epoch's batches as lists of indices into
// examples (which holds the training examples' lengths, by index). With
// shuffle off the batches are consecutive runs in order. With shuffle on
// the examples are shuffled, sorted by length within windows of
// groupWindow batches (so a batch holds similar lengths and wastes little
// padding), cut into batches, and the batch order shuffled; the result
// depends only on seed and epoch. Every batch holds batchSize examples
// except possibly the last one.
func EpochBatches(lengths []int, batchSize int, seed uint64, epoch int, shuffleOn bool) [][]int {
	n := len(lengths)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	r := newRNG(seed, streamEpoch0+uint64(epoch))
	if shuffleOn {
		shuffle(r, idx)
		w := groupWindow * batchSize
		for s := 0; s < n; s += w {
			win := idx[s:min(s+w, n)]
			slices.SortStableFunc(win, func(a, b int) int { return lengths[a] - lengths[b] })
		}
	}
	var batches [][]int
	for s := 0; s < n; s += batchSize {
		batches = append(batches, idx[s:min(s+batchSize, n)])
	}
	if shuffleOn {
		shuffle(r, batches)
	}
	return batches
}
