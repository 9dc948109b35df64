package main

// Stubs for subcommands that have not landed yet; the change that
// implements one deletes its line here (and this file when empty).
var (
	runTokenize     = notYet("runTokenize")
	runGenerate     = notYet("runGenerate")
	runModelInit    = notYet("runModelInit")
	runModelInspect = notYet("runModelInspect")
	runModelPull    = notYet("runModelPull")
)
