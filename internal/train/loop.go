package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/gantryml/gantry/internal/nn"
)

// Net is what the loop needs from a network; *nn.Net satisfies it.
type Net interface {
	Params() []*nn.Param
	ForwardBackward(ctx context.Context, b *nn.Batch, scale float32) (lossSum float64, tokens int, err error)
	Evaluate(ctx context.Context, b *nn.Batch) (lossSum float64, correct, tokens int, err error)
	ZeroGrad()
	RNGState() []byte
	SetRNGState([]byte) error
}

// Optimizer updates the parameters from their gradients; its state is
// saved in checkpoints. *nn.AdamW satisfies it through adamW.
type Optimizer interface {
	Step(lr float64)
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// Metrics is one logged point of a run. ValLoss and ValAccuracy are set
// where validation was evaluated.
type Metrics struct {
	Step         int      `json:"step"`
	Epoch        int      `json:"epoch"` // 1-based epoch the step belongs to
	TotalSteps   int      `json:"total_steps"`
	TrainLoss    float64  `json:"train_loss"` // the step's mean loss per loss-bearing token
	LearningRate float64  `json:"learning_rate"`
	ValLoss      *float64 `json:"val_loss,omitempty"`
	ValAccuracy  *float64 `json:"val_accuracy,omitempty"`
	TokensPerSec float64  `json:"tokens_per_sec"` // real (unpadded) tokens trained per second since the previous point
	ElapsedS     float64  `json:"elapsed_s"`      // training time so far, across resumes
}

// Progress is the per-step report for progress bars.
type Progress struct {
	Step, TotalSteps int
	Loss             float64
}

// LoopOptions are the optimisation loop's settings (see Options for the
// defaults Run fills in; Fit uses them as given).
type LoopOptions struct {
	Epochs                 int
	LearningRate           float64
	BatchSize              int
	LRSchedule             string // ScheduleLinear ("" too) or ScheduleConstant
	WarmupSteps            int
	MaxGradNorm            float64 // 0: no clipping
	EarlyStoppingPatience  int     // 0: never stop early
	EarlyStoppingThreshold float64
	LogInterval            int // OCI's logModelMetricsIntervalInSteps; 0: first 20 steps and the last
	Seed                   uint64
	Shuffle                bool
	CheckpointDir          string // "" : no checkpoints
	CheckpointEvery        int    // steps; 0: epoch ends only
	Resume                 bool   // continue from CheckpointDir's latest checkpoint if there is one
	// RunKey describes whatever else the run depends on (method, model);
	// a checkpoint resumes only a run with the same key, settings and data.
	RunKey string

	Metrics    io.Writer      // JSON Lines of every Metrics point
	OnMetrics  func(Metrics)  // called for every Metrics point
	OnProgress func(Progress) // called after every step
	Logger     *slog.Logger
}

// FitResult is what Fit ends with.
type FitResult struct {
	FinalLoss, FinalAccuracy float64 // validation, for the kept weights
	BestStep                 int     // the step whose weights are kept
	Steps                    int     // steps run (across resumes)
	TotalSteps               int
	EpochsCompleted          int
	EarlyStopped             bool
	History                  []Metrics
}

// ErrResumeMismatch is returned when a checkpoint was written by a run
// with other settings or data.
var ErrResumeMismatch = errors.New("checkpoint does not match this run")

// ErrDiscard, as the cause of the run's context cancellation
// (context.WithCancelCause), stops Fit without the checkpoint it otherwise
// writes on the way out: for a run whose results are being thrown away,
// such as a model being deleted, where stopping fast matters more.
var ErrDiscard = errors.New("training discarded")

// loopState is everything about a run's progress that a checkpoint holds
// besides tensors.
type loopState struct {
	Fingerprint string       `json:"fingerprint"`
	Step        int          `json:"step"`  // steps done
	Epoch       int          `json:"epoch"` // 0-based epoch in progress
	Batch       int          `json:"batch"` // next batch index in Order
	Order       [][]int      `json:"order"` // the epoch's batches
	Stopper     EarlyStopper `json:"stopper"`
	BestStep    int          `json:"best_step"`
	BestLoss    float64      `json:"best_loss"`
	BestAcc     float64      `json:"best_acc"`
	History     []Metrics    `json:"history"`
	Elapsed     float64      `json:"elapsed_s"`
	Done        bool         `json:"done"` // finished (early stop or last step)
	Stopped     bool         `json:"early_stopped"`
	NetRNG      []byte       `json:"net_rng"`
	Epochs      int          `json:"epochs_completed"`
}

// Fit trains net on the training examples, evaluating on the validation
// examples, under OCI's logging, evaluation and early-stopping rules; it
// leaves the kept (best) weights in net's parameters. A Metrics point is
// emitted at every logged step (see Logged) and at every epoch end, with
// validation metrics where Evaluated says; the last step is always both,
// so the final metrics are those of the best evaluation. With
// opt.CheckpointDir it checkpoints at every epoch end and every
// CheckpointEvery steps, and with opt.Resume it first restores the latest
// checkpoint there, so a killed run continues to the same result, bit for
// bit. ctx is checked between steps and passed to the network; when it is
// canceled Fit returns its error, after checkpointing the last completed
// step unless the cancellation interrupted a validation pass (the step is
// then redone from the previous checkpoint on resume).
func Fit(ctx context.Context, net Net, optim Optimizer, trainEx, valEx []Example, opt LoopOptions) (*FitResult, error) {
	if err := checkLoop(opt, len(trainEx), len(valEx)); err != nil {
		return nil, err
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	schedule := opt.LRSchedule
	if schedule == "" {
		schedule = ScheduleLinear
	}
	params := net.Params()
	lengths := make([]int, len(trainEx))
	for i := range trainEx {
		lengths[i] = trainEx[i].Len()
	}
	perEpoch := (len(trainEx) + opt.BatchSize - 1) / opt.BatchSize
	total := opt.Epochs * perEpoch
	st := &loopState{Fingerprint: fingerprint(opt, trainEx, valEx, params)}
	best := snapshot(params)
	stopper := EarlyStopper{Patience: opt.EarlyStoppingPatience, Threshold: opt.EarlyStoppingThreshold}

	if opt.Resume && opt.CheckpointDir != "" {
		ok, err := loadCheckpoint(opt.CheckpointDir, st, params, best, net, optim)
		if err != nil {
			return nil, err
		}
		if ok {
			stopper.Best, stopper.HaveBest, stopper.Bad = st.Stopper.Best, st.Stopper.HaveBest, st.Stopper.Bad
			log.Info("resumed from checkpoint", "dir", opt.CheckpointDir, "step", st.Step, "epoch", st.Epoch+1)
		}
	}

	ev := newEvaluator(valEx, opt.BatchSize)
	var bb batchBuilder
	start := time.Now()
	elapsedBase := st.Elapsed
	lastPointTime, lastPointTokens, tokensSeen := elapsedBase, 0, 0
	elapsed := func() float64 { return elapsedBase + time.Since(start).Seconds() }

	savedStep := -1
	if opt.Resume {
		savedStep = st.Step
	}
	// save checkpoints the state after st.Step steps; rng is the
	// network's RNG state at that point.
	save := func(rng []byte) error {
		if opt.CheckpointDir == "" {
			return nil
		}
		st.Elapsed = elapsed()
		st.Stopper = stopper
		st.NetRNG = rng
		if err := saveCheckpoint(opt.CheckpointDir, st, params, best, optim); err != nil {
			return err
		}
		savedStep = st.Step
		return nil
	}
	// stopped ends a canceled run, checkpointing first when the state is
	// that of a step boundary and not saved yet, so a resume loses nothing.
	stopped := func(err error, rng []byte) error {
		err = fmt.Errorf("training stopped after step %d: %w", st.Step, err)
		if opt.CheckpointDir != "" && rng != nil && savedStep != st.Step && !errors.Is(context.Cause(ctx), ErrDiscard) {
			if serr := save(rng); serr != nil {
				return errors.Join(err, serr)
			}
			log.Info("checkpoint saved on stop", "dir", opt.CheckpointDir, "step", st.Step)
		}
		return err
	}

	for !st.Done && st.Epoch < opt.Epochs {
		if st.Order == nil {
			st.Order = EpochBatches(lengths, opt.BatchSize, opt.Seed, st.Epoch, opt.Shuffle)
			st.Batch = 0
		}
		for st.Batch < len(st.Order) {
			rng := net.RNGState()
			if err := ctx.Err(); err != nil {
				return nil, stopped(err, rng)
			}
			step := st.Step + 1
			b := bb.build(trainEx, st.Order[st.Batch])
			lossTokens := countTargets(b)
			lr := opt.LearningRate * LRFactor(schedule, step, total, opt.WarmupSteps)
			net.ZeroGrad()
			lossSum, n, err := net.ForwardBackward(ctx, b, 1/float32(lossTokens))
			if err != nil {
				if ctx.Err() != nil {
					// Nothing of the step was applied: the parameters and
					// the optimiser are those after st.Step steps.
					return nil, stopped(err, rng)
				}
				return nil, fmt.Errorf("step %d: %w", step, err)
			}
			if n != lossTokens {
				return nil, fmt.Errorf("step %d: network counted %d loss tokens, batch has %d", step, n, lossTokens)
			}
			loss := lossSum / float64(n)
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return nil, fmt.Errorf("step %d: training loss is %v (try a lower learning rate)", step, loss)
			}
			if opt.MaxGradNorm > 0 {
				nn.ClipGradNorm(params, opt.MaxGradNorm)
			}
			optim.Step(lr)
			st.Step, st.Batch = step, st.Batch+1
			for _, l := range b.Lengths {
				tokensSeen += l
			}
			if opt.OnProgress != nil {
				opt.OnProgress(Progress{Step: step, TotalSteps: total, Loss: loss})
			}

			epochEnd := st.Batch == len(st.Order)
			if Logged(step, total, opt.LogInterval) || epochEnd {
				m := Metrics{Step: step, Epoch: st.Epoch + 1, TotalSteps: total, TrainLoss: loss, LearningRate: lr}
				if Evaluated(step, total, opt.LogInterval, epochEnd) {
					vl, va, err := ev.run(ctx, net)
					if err != nil {
						if ctx.Err() != nil {
							// The step is applied but its evaluation is
							// not: no consistent state to save; a resume
							// starts from the last checkpoint.
							return nil, stopped(err, nil)
						}
						return nil, fmt.Errorf("step %d: validation: %w", step, err)
					}
					m.ValLoss, m.ValAccuracy = &vl, &va
					improved, stop := stopper.Observe(vl)
					if improved {
						copySnapshot(best, params)
						st.BestStep, st.BestLoss, st.BestAcc = step, vl, va
					}
					if stop {
						st.Done, st.Stopped = true, true
						log.Info("early stopping", "step", step, "best_step", st.BestStep, "best_val_loss", st.BestLoss)
					}
				}
				now := elapsed()
				if dt := now - lastPointTime; dt > 0 {
					m.TokensPerSec = float64(tokensSeen-lastPointTokens) / dt
				}
				lastPointTime, lastPointTokens = now, tokensSeen
				m.ElapsedS = now
				st.History = append(st.History, m)
				if err := emit(opt, m); err != nil {
					return nil, err
				}
				log.Debug("step", "step", step, "loss", loss, "lr", lr)
			}
			if epochEnd {
				st.Epochs = st.Epoch + 1
				st.Epoch++
				st.Order = nil
				if st.Epoch == opt.Epochs {
					st.Done = true
				}
			}
			if epochEnd || st.Done || (opt.CheckpointEvery > 0 && step%opt.CheckpointEvery == 0) {
				if err := save(net.RNGState()); err != nil {
					return nil, err
				}
			}
			if st.Done {
				break
			}
		}
	}
	if st.BestStep == 0 {
		return nil, fmt.Errorf("training ended without a validation evaluation")
	}
	copyParams(params, best)
	return &FitResult{
		FinalLoss: st.BestLoss, FinalAccuracy: st.BestAcc, BestStep: st.BestStep,
		Steps: st.Step, TotalSteps: total, EpochsCompleted: st.Epochs, EarlyStopped: st.Stopped,
		History: slices.Clone(st.History),
	}, nil
}

func checkLoop(opt LoopOptions, nTrain, nVal int) error {
	switch {
	case opt.Epochs < 1:
		return fmt.Errorf("epochs %d: must be at least 1", opt.Epochs)
	case opt.BatchSize < 1:
		return fmt.Errorf("batch size %d: must be at least 1", opt.BatchSize)
	case !(opt.LearningRate > 0) || math.IsInf(opt.LearningRate, 0):
		return fmt.Errorf("learning rate %v: must be positive", opt.LearningRate)
	case opt.WarmupSteps < 0:
		return fmt.Errorf("warmup steps %d: must not be negative", opt.WarmupSteps)
	case opt.EarlyStoppingPatience < 0:
		return fmt.Errorf("early stopping patience %d: must not be negative", opt.EarlyStoppingPatience)
	case opt.EarlyStoppingThreshold < 0:
		return fmt.Errorf("early stopping threshold %v: must not be negative", opt.EarlyStoppingThreshold)
	case opt.LogInterval < 0:
		return fmt.Errorf("log interval %d: must not be negative", opt.LogInterval)
	case opt.CheckpointEvery < 0:
		return fmt.Errorf("checkpoint interval %d: must not be negative", opt.CheckpointEvery)
	case nTrain == 0 || nVal == 0:
		return fmt.Errorf("need training and validation examples (have %d and %d)", nTrain, nVal)
	}
	if opt.LRSchedule != "" {
		return checkSchedule(opt.LRSchedule)
	}
	return nil
}

// emit sends m to the JSON Lines writer and the callback.
func emit(opt LoopOptions, m Metrics) error {
	if opt.Metrics != nil {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if _, err := opt.Metrics.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	if opt.OnMetrics != nil {
		opt.OnMetrics(m)
	}
	return nil
}

func snapshot(params []*nn.Param) [][]float32 {
	s := make([][]float32, len(params))
	for i, p := range params {
		s[i] = slices.Clone(p.Data)
	}
	return s
}

func copySnapshot(dst [][]float32, params []*nn.Param) {
	for i, p := range params {
		copy(dst[i], p.Data)
	}
}

func copyParams(params []*nn.Param, src [][]float32) {
	for i, p := range params {
		copy(p.Data, src[i])
	}
}

// batchBuilder assembles nn.Batches, reusing its buffers.
type batchBuilder struct {
	b nn.Batch
}

// build returns the right-padded batch of the examples idx. Padding tokens
// are 0 with target −1; the returned batch is valid until the next call.
func (bb *batchBuilder) build(ex []Example, idx []int) *nn.Batch {
	T := 0
	for _, i := range idx {
		T = max(T, ex[i].Len())
	}
	B := len(idx)
	b := &bb.b
	b.B, b.T = B, T
	b.Tokens = resize(b.Tokens, B*T)
	b.Targets = resize(b.Targets, B*T)
	b.Lengths = b.Lengths[:0]
	for r, i := range idx {
		e := &ex[i]
		n := e.Len()
		row, tg := b.Tokens[r*T:(r+1)*T], b.Targets[r*T:(r+1)*T]
		copy(row, e.Tokens[:n])
		for j := 0; j < n; j++ {
			if e.Trained[j+1] {
				tg[j] = e.Tokens[j+1]
			} else {
				tg[j] = -1
			}
		}
		for j := n; j < T; j++ {
			row[j], tg[j] = 0, -1
		}
		b.Lengths = append(b.Lengths, n)
	}
	return b
}

func resize(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func countTargets(b *nn.Batch) int {
	n := 0
	for _, t := range b.Targets {
		if t >= 0 {
			n++
		}
	}
	return n
}

// evaluator computes validation loss and accuracy over fixed batches.
type evaluator struct {
	ex      []Example
	batches [][]int
	bb      batchBuilder
}

func newEvaluator(ex []Example, batchSize int) *evaluator {
	lengths := make([]int, len(ex))
	for i := range ex {
		lengths[i] = ex[i].Len()
	}
	// Sorted by length so batches pad little; the order does not change
	// the token-weighted mean beyond float rounding, and it is fixed.
	idx := make([]int, len(ex))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return lengths[a] - lengths[b] })
	e := &evaluator{ex: ex}
	for s := 0; s < len(idx); s += batchSize {
		e.batches = append(e.batches, idx[s:min(s+batchSize, len(idx))])
	}
	return e
}

// run returns the token-weighted mean validation loss and the share of
// loss-bearing tokens whose arg-max is the target.
func (e *evaluator) run(ctx context.Context, net Net) (loss, acc float64, err error) {
	var sum float64
	var correct, tokens int
	for _, idx := range e.batches {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		s, c, n, err := net.Evaluate(ctx, e.bb.build(e.ex, idx))
		if err != nil {
			return 0, 0, err
		}
		sum += s
		correct += c
		tokens += n
	}
	if tokens == 0 {
		return 0, 0, fmt.Errorf("validation set has no loss-bearing tokens")
	}
	return sum / float64(tokens), float64(correct) / float64(tokens), nil
}
