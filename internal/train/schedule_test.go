package train

import (
	"math"
	"reflect"
	"testing"
)

func TestLRFactor(t *testing.T) {
	cases := []struct {
		schedule      string
		total, warmup int
		want          []float64 // factors at steps 1..total
	}{
		{ScheduleLinear, 4, 0, []float64{1, 0.75, 0.5, 0.25}},
		{ScheduleLinear, 5, 2, []float64{0, 0.5, 1, 2.0 / 3, 1.0 / 3}},
		{ScheduleConstant, 3, 0, []float64{1, 1, 1}},
		{ScheduleConstant, 4, 2, []float64{0, 0.5, 1, 1}},
		{ScheduleLinear, 1, 0, []float64{1}},
	}
	for _, c := range cases {
		var got []float64
		for s := 1; s <= c.total; s++ {
			got = append(got, LRFactor(c.schedule, s, c.total, c.warmup))
		}
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-12 {
				t.Errorf("%s total %d warmup %d: factors %v, want %v", c.schedule, c.total, c.warmup, got, c.want)
				break
			}
		}
	}
}

func TestLoggedSteps(t *testing.T) {
	cases := []struct {
		total, interval int
		want            []int
	}{
		{25, 10, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 25}},
		{45, 10, append(seq(1, 20), 30, 40, 45)},
		{50, 25, append(seq(1, 20), 25, 50)},
		{60, 0, append(seq(1, 20), 60)},
		{5, 3, seq(1, 5)},
	}
	for _, c := range cases {
		var got []int
		for s := 1; s <= c.total; s++ {
			if Logged(s, c.total, c.interval) {
				got = append(got, s)
			}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("total %d interval %d: logged %v, want %v", c.total, c.interval, got, c.want)
		}
	}
	// Evaluation: logged steps after 20, plus epoch ends.
	var ev []int
	for s := 1; s <= 45; s++ {
		if Evaluated(s, 45, 10, s%15 == 0) {
			ev = append(ev, s)
		}
	}
	if want := []int{15, 30, 40, 45}; !reflect.DeepEqual(ev, want) {
		t.Errorf("evaluated %v, want %v", ev, want)
	}
}

func seq(a, b int) []int {
	var s []int
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}

func TestEarlyStopper(t *testing.T) {
	cases := []struct {
		name      string
		patience  int
		threshold float64
		losses    []float64
		stopAt    int // index of the evaluation that stops, -1 none
		best      int // index of the best evaluation
	}{
		{"improving", 2, 0, []float64{3, 2, 1, 0.5}, -1, 3},
		{"plateau", 2, 0, []float64{3, 2, 2.5, 2.1, 1}, 3, 1},
		{"threshold", 3, 0.1, []float64{3, 2.95, 2.92, 2.91, 1}, 3, 3},
		{"patience 0", 0, 0, []float64{1, 2, 3, 4, 5, 6}, -1, 0},
		{"recovers", 2, 0, []float64{3, 4, 2, 5, 6}, 4, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := EarlyStopper{Patience: c.patience, Threshold: c.threshold}
			stopAt, best := -1, -1
			for i, l := range c.losses {
				improved, stop := e.Observe(l)
				if improved {
					best = i
				}
				if stop {
					stopAt = i
					break
				}
			}
			if stopAt != c.stopAt || best != c.best {
				t.Errorf("stopped at %d, best %d; want %d, %d", stopAt, best, c.stopAt, c.best)
			}
		})
	}
}
