package main

import (
	"flag"
	"io"
	"reflect"
	"testing"
)

func TestParseArgsInterspersed(t *testing.T) {
	for _, c := range []struct {
		args    []string
		want    int
		pos     []string
		wait    bool
		output  string
		wantErr bool
	}{
		{[]string{"ID", "--wait", "--output", "table"}, 1, []string{"ID"}, true, "table", false},
		{[]string{"--wait", "ID"}, 1, []string{"ID"}, true, "json", false},
		{[]string{"A", "B"}, 1, nil, false, "json", true},
		{[]string{}, 1, nil, false, "json", true},
		{[]string{"--nope", "ID"}, 1, nil, false, "json", true},
		{[]string{"F", "B/O", "--output=table"}, 2, []string{"F", "B/O"}, false, "table", false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var cf clientFlags
		cf.register(fs)
		wait := fs.Bool("wait", false, "")
		pos, err := parseArgs(fs, c.args, "usage", c.want)
		if (err != nil) != c.wantErr {
			t.Errorf("%v: error %v", c.args, err)
			continue
		}
		if err == nil && (!reflect.DeepEqual(pos, c.pos) || *wait != c.wait || cf.output != c.output) {
			t.Errorf("%v: pos %v wait %v output %q", c.args, pos, *wait, cf.output)
		}
	}
}

func TestTagsFlag(t *testing.T) {
	var f tagsFlag
	if err := f.Set(`{"team":"ml"}`); err != nil || f.m["team"] != "ml" {
		t.Errorf("JSON tags: %v %v", f.m, err)
	}
	if err := f.Set("a=1,b=2"); err != nil || f.m["a"] != "1" || f.m["b"] != "2" {
		t.Errorf("k=v tags: %v %v", f.m, err)
	}
	if err := f.Set("novalue"); err == nil {
		t.Error("tag without = accepted")
	}
}

func TestOptionalFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var epochs optInt
	var lr optFloat
	var name optString
	fs.Var(&epochs, "epochs", "")
	fs.Var(&lr, "learning-rate", "")
	fs.Var(&name, "display-name", "")
	if err := fs.Parse([]string{"--epochs", "3", "--display-name", ""}); err != nil {
		t.Fatal(err)
	}
	if epochs.v == nil || *epochs.v != 3 || lr.v != nil || name.v == nil || *name.v != "" {
		t.Errorf("epochs %v lr %v name %v", epochs.v, lr.v, name.v)
	}
	if err := fs.Parse([]string{"--epochs", "x"}); err == nil {
		t.Error("non-integer epochs accepted")
	}
}
