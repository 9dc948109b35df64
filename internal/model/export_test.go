package model

// Test helpers exported to the external test package (model_test), which
// can import packages that import model, such as internal/peft.
var (
	NewTestModel  = newTestModel
	RequireTorch  = requireTorch
	TorchForward  = torchForward
	CompareLogits = compareLogits
	RandomIDs     = randomIDs
)
