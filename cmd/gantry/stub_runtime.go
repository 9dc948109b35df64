package main

// Stubs for subcommands that have not landed yet; the change that
// implements one deletes its line here (and this file when empty).
var (
	runModelPull = notYet("runModelPull")
)
