package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gantryml/gantry/internal/nn"
)

// bigramNet is a fake network for loop tests: logits of the next token are
// row Tokens[i] of one trainable [V, V] table, with cross-entropy loss, and
// a "dropout" RNG that jitters the gradient so RNG restore is exercised.
type bigramNet struct {
	V   int
	p   nn.Param
	rng *rand.PCG
}

func newBigram(V int, seed uint64) *bigramNet {
	n := &bigramNet{V: V, rng: rand.NewPCG(seed, 3)}
	n.p = nn.Param{Name: "table", Shape: []int{V, V}, Data: make([]float32, V*V), Grad: make([]float32, V*V)}
	r := rand.New(rand.NewPCG(seed, 4))
	for i := range n.p.Data {
		n.p.Data[i] = float32(r.NormFloat64() * 0.1)
	}
	return n
}

func (n *bigramNet) Params() []*nn.Param { return []*nn.Param{&n.p} }
func (n *bigramNet) ZeroGrad()           { clear(n.p.Grad) }
func (n *bigramNet) RNGState() []byte {
	b, _ := n.rng.MarshalBinary()
	return b
}
func (n *bigramNet) SetRNGState(b []byte) error { return n.rng.UnmarshalBinary(b) }

func (n *bigramNet) row(tok int32, dst []float64) (lse float64) {
	r := n.p.Data[int(tok)*n.V : int(tok+1)*n.V]
	m := math.Inf(-1)
	for _, x := range r {
		m = max(m, float64(x))
	}
	var s float64
	for i, x := range r {
		dst[i] = math.Exp(float64(x) - m)
		s += dst[i]
	}
	for i := range dst {
		dst[i] /= s
	}
	return m + math.Log(s)
}

func (n *bigramNet) ForwardBackward(ctx context.Context, b *nn.Batch, scale float32) (float64, int, error) {
	prob := make([]float64, n.V)
	var loss float64
	tokens := 0
	jitter := 1 + float64(n.rng.Uint64()%1000)/1e5
	for i, tg := range b.Targets {
		if tg < 0 {
			continue
		}
		tok := b.Tokens[i]
		lse := n.row(tok, prob)
		loss += lse - float64(n.p.Data[int(tok)*n.V+int(tg)])
		tokens++
		for j := range prob {
			g := prob[j]
			if j == int(tg) {
				g--
			}
			n.p.Grad[int(tok)*n.V+j] += scale * float32(g*jitter)
		}
	}
	return loss, tokens, nil
}

func (n *bigramNet) Evaluate(ctx context.Context, b *nn.Batch) (float64, int, int, error) {
	prob := make([]float64, n.V)
	var loss float64
	tokens, correct := 0, 0
	for i, tg := range b.Targets {
		if tg < 0 {
			continue
		}
		tok := b.Tokens[i]
		lse := n.row(tok, prob)
		loss += lse - float64(n.p.Data[int(tok)*n.V+int(tg)])
		tokens++
		best := 0
		for j := range prob {
			if prob[j] > prob[best] {
				best = j
			}
		}
		if best == int(tg) {
			correct++
		}
	}
	return loss, correct, tokens, nil
}

// scriptedEval wraps bigramNet so each validation pass returns the next
// scripted loss.
type scriptedEval struct {
	*bigramNet
	losses []float64
	pass   int
	batch  int
	nb     int // batches per pass
}

func (s *scriptedEval) Evaluate(ctx context.Context, b *nn.Batch) (float64, int, int, error) {
	_, c, n, err := s.bigramNet.Evaluate(ctx, b)
	l := s.losses[min(s.pass, len(s.losses)-1)]
	s.batch++
	if s.batch == s.nb {
		s.batch = 0
		s.pass++
	}
	return l * float64(n), c, n, err
}

// cycleData returns n examples of a repeating pattern over V tokens:
// token t is followed by (t+1) mod V.
func cycleData(n, V int, seed uint64) []Example {
	r := rand.New(rand.NewPCG(seed, 9))
	ex := make([]Example, n)
	for i := range ex {
		L := 3 + r.IntN(6)
		t := int32(r.IntN(V))
		for j := 0; j < L; j++ {
			ex[i].Tokens = append(ex[i].Tokens, t)
			ex[i].Trained = append(ex[i].Trained, j >= 1)
			t = (t + 1) % int32(V)
		}
	}
	return ex
}

func loopOpts() LoopOptions {
	return LoopOptions{Epochs: 3, LearningRate: 0.05, BatchSize: 4, MaxGradNorm: 1, LogInterval: 5, Seed: 11, Shuffle: true}
}

func TestFitLearnsAndLogs(t *testing.T) {
	ex := cycleData(100, 7, 1)
	net := newBigram(7, 1)
	opt := loopOpts()
	var jsonl bytes.Buffer
	var points []Metrics
	var progress []int
	opt.Metrics = &jsonl
	opt.OnMetrics = func(m Metrics) { points = append(points, m) }
	opt.OnProgress = func(p Progress) { progress = append(progress, p.Step) }
	res, err := Fit(context.Background(), net, nn.NewAdamW(net.Params()), ex[:80], ex[80:], opt)
	if err != nil {
		t.Fatal(err)
	}
	// 80 examples / 4 = 20 steps per epoch, 60 in all.
	if res.TotalSteps != 60 || res.Steps != 60 || res.EpochsCompleted != 3 || res.EarlyStopped || len(progress) != 60 {
		t.Fatalf("result %+v, %d progress calls", res, len(progress))
	}
	var logged, evaluated []int
	for _, m := range points {
		logged = append(logged, m.Step)
		if m.ValLoss != nil {
			evaluated = append(evaluated, m.Step)
		}
		if want := opt.LearningRate * LRFactor(ScheduleLinear, m.Step, 60, 0); m.LearningRate != want {
			t.Errorf("step %d: lr %v, want %v", m.Step, m.LearningRate, want)
		}
		if m.Epoch != (m.Step-1)/20+1 || m.TotalSteps != 60 {
			t.Errorf("step %d: epoch %d total %d", m.Step, m.Epoch, m.TotalSteps)
		}
	}
	if want := append(seq(1, 20), 25, 30, 35, 40, 45, 50, 55, 60); !reflect.DeepEqual(logged, want) {
		t.Errorf("logged steps %v, want %v", logged, want)
	}
	if want := []int{20, 25, 30, 35, 40, 45, 50, 55, 60}; !reflect.DeepEqual(evaluated, want) {
		t.Errorf("evaluated steps %v, want %v", evaluated, want)
	}
	if n := bytes.Count(jsonl.Bytes(), []byte("\n")); n != len(points) {
		t.Errorf("%d JSON lines for %d points", n, len(points))
	}
	if !bytes.Contains(jsonl.Bytes(), []byte(`"val_accuracy":`)) || !bytes.Contains(jsonl.Bytes(), []byte(`"tokens_per_sec":`)) {
		t.Errorf("JSON lines lack keys: %s", jsonl.Bytes()[:200])
	}
	if res.FinalAccuracy < 0.95 {
		t.Errorf("final accuracy %v on a deterministic pattern, want ≥ 0.95", res.FinalAccuracy)
	}
	if first := points[0].TrainLoss; !(res.FinalLoss < first/4) {
		t.Errorf("final loss %v, first step loss %v", res.FinalLoss, first)
	}
}

func TestFitEarlyStoppingKeepsBest(t *testing.T) {
	ex := cycleData(100, 7, 2)
	net := newBigram(7, 2)
	// 20 validation examples in batches of 4: 5 batches a pass.
	se := &scriptedEval{bigramNet: net, nb: 5, losses: []float64{5, 4, 3, 3.5, 3.2, 3.1, 1}}
	opt := loopOpts()
	opt.EarlyStoppingPatience = 3
	opt.EarlyStoppingThreshold = 0.01
	var bestData []float32
	var points []Metrics
	opt.OnMetrics = func(m Metrics) {
		points = append(points, m)
		if m.Step == 30 { // the third evaluation (steps 20, 25, 30)
			bestData = append([]float32(nil), net.p.Data...)
		}
	}
	res, err := Fit(context.Background(), se, nn.NewAdamW(net.Params()), ex[:80], ex[80:], opt)
	if err != nil {
		t.Fatal(err)
	}
	// Evaluations at 20, 25, 30, 35, 40, 45: losses 5 4 3 3.5 3.2 3.1;
	// three without improvement after step 30 stop at step 45.
	if !res.EarlyStopped || res.Steps != 45 || res.BestStep != 30 || res.FinalLoss != 3 {
		t.Fatalf("result %+v", res)
	}
	if points[len(points)-1].Step != 45 {
		t.Errorf("last point at step %d", points[len(points)-1].Step)
	}
	if !reflect.DeepEqual(net.p.Data, bestData) {
		t.Error("the kept weights are not those of the best evaluation")
	}
}

func TestFitCancel(t *testing.T) {
	ex := cycleData(100, 7, 3)
	net := newBigram(7, 3)
	ctx, cancel := context.WithCancel(context.Background())
	opt := loopOpts()
	opt.OnProgress = func(p Progress) {
		if p.Step == 3 {
			cancel()
		}
	}
	_, err := Fit(ctx, net, nn.NewAdamW(net.Params()), ex[:80], ex[80:], opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestCancelCheckpoints checks the checkpoint written when a run is
// canceled, and that ErrDiscard as the cause skips it.
func TestCancelCheckpoints(t *testing.T) {
	ex := cycleData(100, 7, 3)
	for _, discard := range []bool{false, true} {
		net := newBigram(7, 3)
		ctx, cancel := context.WithCancelCause(context.Background())
		opt := loopOpts()
		opt.CheckpointDir = t.TempDir()
		opt.OnProgress = func(p Progress) {
			if p.Step == 3 {
				if discard {
					cancel(ErrDiscard)
				} else {
					cancel(nil)
				}
			}
		}
		_, err := Fit(ctx, net, nn.NewAdamW(net.Params()), ex[:80], ex[80:], opt)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		b, err := os.ReadFile(filepath.Join(opt.CheckpointDir, "LATEST"))
		if discard && err == nil {
			t.Errorf("discarded run wrote checkpoint %q", b)
		}
		if !discard && string(bytes.TrimSpace(b)) != "step-00000003" {
			t.Errorf("LATEST = %q (%v), want step-00000003", b, err)
		}
	}
}

// stripTiming zeroes the metrics that depend on the clock.
func stripTiming(h []Metrics) []Metrics {
	out := append([]Metrics(nil), h...)
	for i := range out {
		out[i].TokensPerSec, out[i].ElapsedS = 0, 0
	}
	return out
}

func TestResumeEqualsUninterrupted(t *testing.T) {
	ex := cycleData(90, 7, 4)
	opt := loopOpts()
	opt.CheckpointEvery = 7
	opt.EarlyStoppingPatience = 4

	full := newBigram(7, 5)
	opt.CheckpointDir = t.TempDir()
	want, err := Fit(context.Background(), full, nn.NewAdamW(full.Params()), ex[:72], ex[72:], opt)
	if err != nil {
		t.Fatal(err)
	}

	for _, killAt := range []int{3, 9, 18, 30, 52} {
		t.Run(fmt.Sprint("kill at ", killAt), func(t *testing.T) {
			o := opt
			o.CheckpointDir = t.TempDir()
			o.Resume = true
			ctx, cancel := context.WithCancel(context.Background())
			o.OnProgress = func(p Progress) {
				if p.Step == killAt {
					cancel()
				}
			}
			net := newBigram(7, 5)
			if _, err := Fit(ctx, net, nn.NewAdamW(net.Params()), ex[:72], ex[72:], o); !errors.Is(err, context.Canceled) {
				t.Fatalf("first run: %v", err)
			}
			// A fresh process: new network (same init) and optimiser.
			firstStep := 0
			o.OnProgress = func(p Progress) {
				if firstStep == 0 {
					firstStep = p.Step
				}
			}
			net = newBigram(7, 5)
			got, err := Fit(context.Background(), net, nn.NewAdamW(net.Params()), ex[:72], ex[72:], o)
			if err != nil {
				t.Fatal(err)
			}
			// A kill between steps checkpoints the last step; one that
			// interrupts a validation pass leaves the previous checkpoint
			// (every 7 steps and at epoch ends, 18 steps an epoch).
			wantFirst := killAt + 1
			if Evaluated(killAt, 54, opt.LogInterval, killAt%18 == 0) {
				for s := 1; s < killAt; s++ {
					if s%7 == 0 || s%18 == 0 {
						wantFirst = s + 1
					}
				}
			}
			if firstStep != wantFirst {
				t.Errorf("resumed at step %d, want %d", firstStep, wantFirst)
			}
			if !reflect.DeepEqual(net.p.Data, full.p.Data) {
				t.Error("final weights differ from the uninterrupted run")
			}
			g, w := *got, *want
			g.History, w.History = stripTiming(g.History), stripTiming(w.History)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("result\n%+v\nwant\n%+v", g, w)
			}
		})
	}
}

func TestResumeMismatch(t *testing.T) {
	ex := cycleData(50, 7, 4)
	opt := loopOpts()
	opt.CheckpointDir = t.TempDir()
	opt.Epochs = 1
	net := newBigram(7, 5)
	if _, err := Fit(context.Background(), net, nn.NewAdamW(net.Params()), ex[:40], ex[40:], opt); err != nil {
		t.Fatal(err)
	}
	opt.Resume = true
	opt.LearningRate = 0.01
	net = newBigram(7, 5)
	if _, err := Fit(context.Background(), net, nn.NewAdamW(net.Params()), ex[:40], ex[40:], opt); !errors.Is(err, ErrResumeMismatch) {
		t.Fatalf("err = %v, want ErrResumeMismatch", err)
	}
}

func TestBatchBuilder(t *testing.T) {
	ex := []Example{
		{Tokens: []int32{1, 2, 3, 4}, Trained: []bool{false, false, true, true}},
		{Tokens: []int32{5, 6}, Trained: []bool{false, true}},
	}
	var bb batchBuilder
	b := bb.build(ex, []int{1, 0})
	if b.B != 2 || b.T != 3 || !reflect.DeepEqual(b.Lengths, []int{1, 3}) {
		t.Fatalf("batch %+v", b)
	}
	if !reflect.DeepEqual(b.Tokens, []int32{5, 0, 0, 1, 2, 3}) || !reflect.DeepEqual(b.Targets, []int32{6, -1, -1, -1, 3, 4}) {
		t.Errorf("tokens %v targets %v", b.Tokens, b.Targets)
	}
}

// TestFitEpochEndEvaluations checks that epoch ends off the logging
// interval are evaluated and emitted as points.
func TestFitEpochEndEvaluations(t *testing.T) {
	ex := cycleData(90, 7, 6)
	net := newBigram(7, 6)
	opt := loopOpts()
	var logged, evaluated []int
	opt.OnMetrics = func(m Metrics) {
		logged = append(logged, m.Step)
		if m.ValLoss != nil {
			evaluated = append(evaluated, m.Step)
		}
	}
	// 72 training examples in batches of 4: 18 steps an epoch, 54 in all.
	if _, err := Fit(context.Background(), net, nn.NewAdamW(net.Params()), ex[:72], ex[72:], opt); err != nil {
		t.Fatal(err)
	}
	if want := append(seq(1, 20), 25, 30, 35, 36, 40, 45, 50, 54); !reflect.DeepEqual(logged, want) {
		t.Errorf("points at %v, want %v", logged, want)
	}
	if want := []int{18, 25, 30, 35, 36, 40, 45, 50, 54}; !reflect.DeepEqual(evaluated, want) {
		t.Errorf("evaluated at %v, want %v", evaluated, want)
	}
}
