// Command gantry is a self-hosted fine-tuning service with the OCI
// Generative AI API, and the tools around it: a pure-Go model runtime,
// a trainer, benchmarks and a client.
//
// Each subcommand lives in its own file and only parses flags and calls
// a package under internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: run receives the arguments after its name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands lists every top-level subcommand. Commands with verbs of
// their own ("model init", "bench gemm") dispatch again with subcommands.
func commands() map[string]command {
	return map[string]command{
		"serve":        {"run the API server and the job workers", runServe},
		"admin":        {"manage tenancies, users, keys and compartments", runAdmin},
		"demo":         {"run the whole fine-tuning flow offline on a sample dataset", runDemo},
		"model":        {"work with models: init, inspect, pull, list, get, create, update, delete, download, metrics", runModel},
		"cluster":      {"manage dedicated AI clusters", runCluster},
		"work-request": {"read work requests: get, list, logs, errors", runWorkRequest},
		"os":           {"object storage: mb, put, get, ls, rm, rb", runObjectStorage},
		"tokenize":     {"print the token ids of a text", runTokenize},
		"generate":     {"generate text with a model and an optional adapter", runGenerate},
		"train":        {"fine-tune a model on a JSONL dataset", runTrain},
		"pretrain":     {"train a small model from scratch on a text corpus", runPretrain},
		"export":       {"merge an adapter into its base model and write a full model directory", runExport},
		"bench":        {"benchmarks: gemm, train", runBench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatch(ctx, "gantry", commands(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "gantry: %v\n", err)
		os.Exit(1)
	}
}

// dispatch runs the subcommand named by args[0] from cmds.
func dispatch(ctx context.Context, prog string, cmds map[string]command, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(prog, cmds)
		if len(args) == 0 {
			return flag.ErrHelp
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(prog, cmds)
		return fmt.Errorf("unknown command %q", prog+" "+args[0])
	}
	return c.run(ctx, args[1:])
}

func usage(prog string, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s <command> [flags]\n\ncommands:\n", prog)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-14s %s\n", n, cmds[n].summary)
	}
	fmt.Fprint(os.Stderr, b.String())
}

// runModel dispatches "gantry model VERB": the runtime verbs (init, inspect,
// pull) work on directories; the others are API clients.
func runModel(ctx context.Context, args []string) error {
	return dispatch(ctx, "gantry model", map[string]command{
		"init":     {"write a randomly initialised model directory from a preset", runModelInit},
		"inspect":  {"describe a model directory", runModelInspect},
		"pull":     {"download a Hugging Face repository", runModelPull},
		"list":     {"list models", runModelList},
		"get":      {"get a model", runModelGet},
		"create":   {"create (fine-tune) a custom model", runModelCreate},
		"update":   {"update a model", runModelUpdate},
		"delete":   {"delete a model", runModelDelete},
		"download": {"download a custom model's adapter or weights", runModelDownload},
		"metrics":  {"print a custom model's training metrics", runModelMetrics},
	}, args)
}

// runBench dispatches "gantry bench VERB".
func runBench(ctx context.Context, args []string) error {
	return dispatch(ctx, "gantry bench", map[string]command{
		"gemm":  {"measure SGEMM throughput", runBenchGemm},
		"train": {"measure training throughput", runBenchTrain},
	}, args)
}
