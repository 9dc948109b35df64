package api

import (
	"encoding/json"
	"testing"

	"github.com/gantryml/gantry/internal/core"
)

func TestParseTrainingConfigDefaults(t *testing.T) {
	cases := []struct {
		name   string
		raw    string
		layers int
		want   core.TrainingConfig
	}{
		{"omitted", "", 16, core.TrainingConfig{Type: core.TrainingConfigLoRA, TotalTrainingEpochs: 3, LearningRate: 0.0002, TrainingBatchSize: 8,
			EarlyStoppingPatience: 15, EarlyStoppingThreshold: 0.0001, LogModelMetricsIntervalInSteps: 10, LoraR: 8, LoraAlpha: 8, LoraDropout: 0.1}},
		{"null", "null", 16, core.TrainingConfig{Type: core.TrainingConfigLoRA, TotalTrainingEpochs: 3, LearningRate: 0.0002, TrainingBatchSize: 8,
			EarlyStoppingPatience: 15, EarlyStoppingThreshold: 0.0001, LogModelMetricsIntervalInSteps: 10, LoraR: 8, LoraAlpha: 8, LoraDropout: 0.1}},
		{"tfew", `{"trainingConfigType":"TFEW_TRAINING_CONFIG","trainingBatchSize":16}`, 16, core.TrainingConfig{Type: core.TrainingConfigTFew,
			TotalTrainingEpochs: 3, LearningRate: 0.01, TrainingBatchSize: 16, EarlyStoppingPatience: 15, EarlyStoppingThreshold: 0.0001, LogModelMetricsIntervalInSteps: 10}},
		{"vanilla deep", `{"trainingConfigType":"VANILLA_TRAINING_CONFIG"}`, 40, core.TrainingConfig{Type: core.TrainingConfigVanilla,
			TotalTrainingEpochs: 3, LearningRate: 0.01, TrainingBatchSize: 8, EarlyStoppingPatience: 15, EarlyStoppingThreshold: 0.0001, LogModelMetricsIntervalInSteps: 10, NumOfLastLayers: 15}},
		{"vanilla shallow", `{"trainingConfigType":"VANILLA_TRAINING_CONFIG","earlyStoppingPatience":0,"logModelMetricsIntervalInSteps":0}`, 4, core.TrainingConfig{Type: core.TrainingConfigVanilla,
			TotalTrainingEpochs: 3, LearningRate: 0.01, TrainingBatchSize: 8, EarlyStoppingPatience: 0, EarlyStoppingThreshold: 0.0001, LogModelMetricsIntervalInSteps: 0, NumOfLastLayers: 4}},
		{"lora bounds", `{"trainingConfigType":"LORA_TRAINING_CONFIG","loraR":64,"loraAlpha":128,"loraDropout":0,"learningRate":1,"totalTrainingEpochs":100,"trainingBatchSize":1024}`, 4,
			core.TrainingConfig{Type: core.TrainingConfigLoRA, TotalTrainingEpochs: 100, LearningRate: 1, TrainingBatchSize: 1024,
				EarlyStoppingPatience: 15, EarlyStoppingThreshold: 0.0001, LogModelMetricsIntervalInSteps: 10, LoraR: 64, LoraAlpha: 128, LoraDropout: 0}},
	}
	for _, tc := range cases {
		got, err := ParseTrainingConfig(json.RawMessage(tc.raw), tc.layers)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestParseTrainingConfigErrors(t *testing.T) {
	cases := []struct{ raw, code, field string }{
		{`{"trainingConfigType":"LORA_TRAINING_CONFIG","learningRate":-0.1}`, CodeInvalidParameter, "learningRate"},
		{`{"trainingConfigType":"LORA_TRAINING_CONFIG","loraAlpha":129}`, CodeInvalidParameter, "loraAlpha"},
		{`{"trainingConfigType":"LORA_TRAINING_CONFIG","totalTrainingEpochs":"3"}`, CodeInvalidParameter, "totalTrainingEpochs"},
		{`{"trainingConfigType":"LORA_TRAINING_CONFIG","epochs":3}`, CodeInvalidParameter, "epochs"},
		{`{"trainingConfigType":"VANILLA_TRAINING_CONFIG","loraDropout":0.2}`, CodeInvalidParameter, "loraDropout"},
		{`{"trainingConfigType":"VANILLA_TRAINING_CONFIG","earlyStoppingThreshold":2}`, CodeInvalidParameter, "earlyStoppingThreshold"},
		{`[1]`, CodeInvalidParameter, "trainingConfig"},
	}
	for _, tc := range cases {
		_, err := ParseTrainingConfig(json.RawMessage(tc.raw), 8)
		ae, ok := err.(*Error)
		if !ok || ae.Code != tc.code || ae.Status != 400 || !contains(ae.Message, tc.field) {
			t.Errorf("%s: got %v, want 400 %s naming %s", tc.raw, err, tc.code, tc.field)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
