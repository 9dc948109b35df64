package main

import (
	"context"
	"fmt"
)

// notYet is the answer of a subcommand whose package has not landed yet.
func notYet(name string) func(context.Context, []string) error {
	return func(context.Context, []string) error {
		return fmt.Errorf("%s is not implemented yet", name)
	}
}
