package main

// Stubs for subcommands that have not landed yet; the change that
// implements one deletes its line here (and this file when empty).
var (
	runCluster       = notYet("runCluster")
	runWorkRequest   = notYet("runWorkRequest")
	runObjectStorage = notYet("runObjectStorage")
	runModelList     = notYet("runModelList")
	runModelGet      = notYet("runModelGet")
	runModelCreate   = notYet("runModelCreate")
	runModelUpdate   = notYet("runModelUpdate")
	runModelDelete   = notYet("runModelDelete")
	runModelDownload = notYet("runModelDownload")
	runModelMetrics  = notYet("runModelMetrics")
)
