package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/peft"
	"github.com/gantryml/gantry/internal/safetensors"
)

// A checkpoint directory holds one subdirectory per checkpoint,
// "step-NNNNNNNN", and a file LATEST naming the newest complete one.
// A checkpoint is written into a temporary directory, every file fsynced,
// renamed into place, and only then named by LATEST (itself replaced
// atomically); older checkpoints are removed afterwards. A crash at any
// point leaves LATEST naming a complete checkpoint.
//
// Files of a checkpoint:
//
//	state.json           loopState: position, batch order, early stopping, history, RNG
//	params.safetensors   the trainable tensors now (by Param name)
//	best.safetensors     the best-so-far trainable tensors
//	optimizer.bin        the optimiser's MarshalBinary
const (
	latestFile    = "LATEST"
	stateFile     = "state.json"
	paramsFile    = "params.safetensors"
	bestFile      = "best.safetensors"
	optimizerFile = "optimizer.bin"
)

// fingerprint identifies what a run's trajectory depends on: the settings,
// the data and the parameters' names and shapes.
func fingerprint(opt LoopOptions, trainEx, valEx []Example, params []*nn.Param) string {
	h := sha256.New()
	fmt.Fprintf(h, "epochs=%d lr=%v batch=%d sched=%q warmup=%d clip=%v patience=%d threshold=%v log=%d seed=%d shuffle=%v\n",
		opt.Epochs, opt.LearningRate, opt.BatchSize, opt.LRSchedule, opt.WarmupSteps, opt.MaxGradNorm,
		opt.EarlyStoppingPatience, opt.EarlyStoppingThreshold, opt.LogInterval, opt.Seed, opt.Shuffle)
	fmt.Fprintf(h, "key %q\n", opt.RunKey)
	var buf [4]byte
	for _, set := range [][]Example{trainEx, valEx} {
		fmt.Fprintf(h, "set %d\n", len(set))
		for _, e := range set {
			fmt.Fprintf(h, "ex %d\n", len(e.Tokens))
			for i, t := range e.Tokens {
				v := uint32(t) << 1
				if e.Trained[i] {
					v |= 1
				}
				binary.LittleEndian.PutUint32(buf[:], v)
				h.Write(buf[:])
			}
		}
	}
	for _, p := range params {
		fmt.Fprintf(h, "param %s %v\n", p.Name, p.Shape)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeTensors(path string, params []*nn.Param, data [][]float32) error {
	ts := make([]safetensors.Tensor, len(params))
	for i, p := range params {
		ts[i] = safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: data[i]}
	}
	return safetensors.WriteFile(path, ts, nil)
}

// readTensors fills dst[i] with the tensor named params[i].Name.
func readTensors(path string, params []*nn.Param, dst [][]float32) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if n := len(f.Tensors()); n != len(params) {
		return fmt.Errorf("%s holds %d tensors, the run has %d parameters", path, n, len(params))
	}
	for i, p := range params {
		vals, info, err := f.Float32(p.Name)
		if err != nil {
			return err
		}
		if !slices.Equal(info.Shape, p.Shape) || len(vals) != len(dst[i]) {
			return fmt.Errorf("%s: tensor %q has shape %v, want %v", path, p.Name, info.Shape, p.Shape)
		}
		copy(dst[i], vals)
	}
	return nil
}

func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// saveCheckpoint writes a new checkpoint of the run into dir.
func saveCheckpoint(dir string, st *loopState, params []*nn.Param, best [][]float32, optim Optimizer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	name := fmt.Sprintf("step-%08d", st.Step)
	tmp, err := os.MkdirTemp(dir, "."+name+".tmp")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	fail := func(err error) error {
		os.RemoveAll(tmp)
		return fmt.Errorf("checkpoint step %d: %w", st.Step, err)
	}
	cur := make([][]float32, len(params))
	for i, p := range params {
		cur[i] = p.Data
	}
	if err := writeTensors(filepath.Join(tmp, paramsFile), params, cur); err != nil {
		return fail(err)
	}
	if err := writeTensors(filepath.Join(tmp, bestFile), params, best); err != nil {
		return fail(err)
	}
	ob, err := optim.MarshalBinary()
	if err != nil {
		return fail(err)
	}
	if err := peft.WriteFileAtomic(filepath.Join(tmp, optimizerFile), ob); err != nil {
		return fail(err)
	}
	sb, err := json.Marshal(st)
	if err != nil {
		return fail(err)
	}
	if err := peft.WriteFileAtomic(filepath.Join(tmp, stateFile), sb); err != nil {
		return fail(err)
	}
	if err := fsyncDir(tmp); err != nil {
		return fail(err)
	}
	final := filepath.Join(dir, name)
	os.RemoveAll(final) // a leftover from a run that died before naming it LATEST
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := peft.WriteFileAtomic(filepath.Join(dir, latestFile), []byte(name+"\n")); err != nil {
		return fail(err)
	}
	if err := fsyncDir(dir); err != nil {
		return fail(err)
	}
	// Remove older checkpoints and stale temporaries.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if n != name && (strings.HasPrefix(n, "step-") || strings.HasPrefix(n, ".step-")) {
			os.RemoveAll(filepath.Join(dir, n))
		}
	}
	return nil
}

// loadCheckpoint restores the newest checkpoint in dir into st, the
// parameters, best, the network's RNG and the optimiser. It reports false
// when dir holds no checkpoint.
func loadCheckpoint(dir string, st *loopState, params []*nn.Param, best [][]float32, net Net, optim Optimizer) (bool, error) {
	lb, err := os.ReadFile(filepath.Join(dir, latestFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("resume: %w", err)
	}
	name := strings.TrimSpace(string(lb))
	if !strings.HasPrefix(name, "step-") || strings.ContainsAny(name, `/\`) {
		return false, fmt.Errorf("resume: %s names %q, not a checkpoint", filepath.Join(dir, latestFile), name)
	}
	cdir := filepath.Join(dir, name)
	sb, err := os.ReadFile(filepath.Join(cdir, stateFile))
	if err != nil {
		return false, fmt.Errorf("resume: %w", err)
	}
	var saved loopState
	if err := json.Unmarshal(sb, &saved); err != nil {
		return false, fmt.Errorf("resume: %s: %w", filepath.Join(cdir, stateFile), err)
	}
	if saved.Fingerprint != st.Fingerprint {
		return false, fmt.Errorf("resume from %s: %w (settings, data or model differ)", cdir, ErrResumeMismatch)
	}
	cur := make([][]float32, len(params))
	for i, p := range params {
		cur[i] = p.Data
	}
	if err := readTensors(filepath.Join(cdir, paramsFile), params, cur); err != nil {
		return false, fmt.Errorf("resume: %w", err)
	}
	if err := readTensors(filepath.Join(cdir, bestFile), params, best); err != nil {
		return false, fmt.Errorf("resume: %w", err)
	}
	ob, err := os.ReadFile(filepath.Join(cdir, optimizerFile))
	if err != nil {
		return false, fmt.Errorf("resume: %w", err)
	}
	if err := optim.UnmarshalBinary(ob); err != nil {
		return false, fmt.Errorf("resume: %s: %w", filepath.Join(cdir, optimizerFile), err)
	}
	if err := net.SetRNGState(saved.NetRNG); err != nil {
		return false, fmt.Errorf("resume: network RNG: %w", err)
	}
	if math.IsNaN(saved.Elapsed) {
		saved.Elapsed = 0
	}
	*st = saved
	return true, nil
}
