package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/gantryml/gantry/internal/tokenizer"
)

// runTokenize prints the token ids of a text as one JSON array.
func runTokenize(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry tokenize", flag.ContinueOnError)
	dir := fs.String("model", "", "model or tokenizer directory (tokenizer.json, optional tokenizer_config.json)")
	text := fs.String("text", "", "text to tokenize")
	noSpecial := fs.Bool("no-special", false, "do not add the special tokens the tokenizer's post-processor adds (such as BOS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("tokenize: --model is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("tokenize: unexpected arguments %q", fs.Args())
	}
	tok, err := tokenizer.Load(*dir)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	out, err := json.Marshal(tok.Encode(*text, !*noSpecial))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, string(out))
	return err
}
