package basemodel_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/basemodel"
	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// heldOutText is from the end of examples/corpus/moby-dick-1-40.txt, in
// the validation tail that pretraining never trained on.
const heldOutText = "OLD MANX SAILOR. Ready formed. There! the ringed horizon. In that ring Cain struck Abel. Sweet work, right work! No? Why then, God, mad'st thou the ring?\n\nMATE'S VOICE FROM THE QUARTER-DECK. Hands by the halyards! in top-gallant sails! Stand by to reef topsails!\n\nALL. The squall! the squall! jump, my jollies!"

func TestInstallWritesALoadableModel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "base")
	if err := basemodel.Install(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != m.Config.VocabSize || m.Config.NumHiddenLayers != 4 || m.Config.HiddenSize != 128 {
		t.Errorf("vocabulary %d/%d, %d layers, hidden %d", tok.VocabSize(), m.Config.VocabSize, m.Config.NumHiddenLayers, m.Config.HiddenSize)
	}
	if m.DTypes["BF16"] == 0 {
		t.Errorf("weights dtypes %v, want bf16", m.DTypes)
	}

	// gantry.json is a valid catalog description (the server rejects
	// unknown fields).
	b, err := os.ReadFile(filepath.Join(dir, basemodel.CatalogFile))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var spec server.BaseModelSpec
	if err := dec.Decode(&spec); err != nil {
		t.Fatalf("gantry.json: %v", err)
	}
	if spec.DisplayName != basemodel.DisplayName || len(spec.Capabilities) != 2 {
		t.Errorf("spec %+v", spec)
	}

	// Pretrained, not random: on held-out Moby-Dick text the loss per
	// byte is far below a uniform guess's ln 259 ≈ 5.56 nats.
	ids := tok.Encode(heldOutText, false)
	T := len(ids) - 1
	cache, err := m.NewCache(1, T)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := m.Forward(context.Background(), cache, ids[:T], nil, 1, T, false)
	if err != nil {
		t.Fatal(err)
	}
	loss := model.CrossEntropy(logits, ids[1:], m.Config.VocabSize)
	t.Logf("held-out loss %.3f nats per byte over %d bytes", loss, T)
	if loss > 3 {
		t.Errorf("held-out loss %.3f nats per byte, want < 3 (a trained model; the pretraining's validation loss was 1.96)", loss)
	}
}

func TestServerInstallsIt(t *testing.T) {
	dir := t.TempDir()
	srv, err := server.Open(context.Background(), server.Config{DataDir: dir, Listen: "127.0.0.1:0", InstallDefaultBaseModel: basemodel.Install, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	models := srv.Catalog.Models()
	if len(models) != 1 || models[0].Model.DisplayName != basemodel.DisplayName || models[0].NumLayers != 4 {
		t.Fatalf("catalog %+v", models)
	}
	if _, err := os.Stat(filepath.Join(dir, server.BaseModelsDir, server.DefaultBaseModelName, "model.safetensors")); err != nil {
		t.Error(err)
	}
}
