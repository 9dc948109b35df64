package train

import (
	"fmt"
	"math"
)

// Learning-rate schedules.
const (
	ScheduleLinear   = "linear"   // warmup, then linear decay to zero at the last step
	ScheduleConstant = "constant" // warmup, then constant
)

// LRFactor returns the factor the base learning rate is multiplied by at
// step (1-based) of total, as Hugging Face's get_linear_schedule_with_warmup
// and get_constant_schedule_with_warmup compute it for the optimizer step
// they apply: lambda(step-1) with lambda(s) = s/warmup while s < warmup,
// then (total-s)/(total-warmup) (linear) or 1 (constant).
func LRFactor(schedule string, step, total, warmup int) float64 {
	s := step - 1
	if s < warmup {
		return float64(s) / float64(max(1, warmup))
	}
	if schedule == ScheduleConstant {
		return 1
	}
	return math.Max(0, float64(total-s)/float64(max(1, total-warmup)))
}

func checkSchedule(s string) error {
	switch s {
	case ScheduleLinear, ScheduleConstant:
		return nil
	}
	return fmt.Errorf("learning-rate schedule %q: want %q or %q", s, ScheduleLinear, ScheduleConstant)
}

// firstLoggedSteps are always logged.
const firstLoggedSteps = 20

// Logged says whether OCI's rule logs training metrics at step (1-based)
// of total: steps 1..20, every multiple of interval, and the last step
// (interval 0: only the first 20 and the last).
func Logged(step, total, interval int) bool {
	return step <= firstLoggedSteps || (interval > 0 && step%interval == 0) || step == total
}

// Evaluated says whether validation metrics are computed at step: at every
// logged step after step 20, and at the end of every epoch.
func Evaluated(step, total, interval int, epochEnd bool) bool {
	return epochEnd || (step > firstLoggedSteps && Logged(step, total, interval))
}

// EarlyStopper applies the early-stopping rule to a sequence of
// validation losses. Its zero value never stops and treats every first
// loss as the best.
type EarlyStopper struct {
	Patience  int     // stop after this many evaluations without improvement; 0: never
	Threshold float64 // an improvement must exceed this

	Best     float64 `json:"best"`      // lowest loss seen
	HaveBest bool    `json:"have_best"` // Best is set
	Bad      int     `json:"bad"`       // consecutive evaluations without improvement
}

// Observe records one validation loss. improved says whether it is the
// best so far (the weights to keep); stop says training should end.
// An evaluation counts as no improvement unless it beats the best by more
// than Threshold; the best loss (and the kept weights) still follow any
// strict decrease.
func (e *EarlyStopper) Observe(loss float64) (improved, stop bool) {
	if !e.HaveBest {
		e.Best, e.HaveBest, e.Bad = loss, true, 0
		return true, false
	}
	if loss < e.Best-e.Threshold {
		e.Bad = 0
	} else {
		e.Bad++
	}
	if loss < e.Best {
		e.Best = loss
		improved = true
	}
	return improved, e.Patience > 0 && e.Bad >= e.Patience
}
