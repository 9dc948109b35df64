package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/store"
)

// testClaimBootstrap: the first claim wins, later ones see it taken; a
// claim in a rolled-back transaction is undone.
func testClaimBootstrap(t *testing.T, st store.Store) {
	now := time.Now().UTC()
	boom := errors.New("boom")
	err := st.InTx(ctx(t), func(tx store.Tx) error {
		ok, err := tx.ClaimBootstrap(ctx(t), "ocid1.tenancy.oc1..rolledback", now)
		if err != nil {
			return err
		}
		if !ok {
			t.Error("first claim, in a transaction: not claimed")
		}
		return boom
	})
	wantErr(t, err, boom, "rolled-back claim")
	ok, err := st.ClaimBootstrap(ctx(t), "ocid1.tenancy.oc1..a", now)
	must(t, err, "claim")
	if !ok {
		t.Fatal("claim after a rolled-back one: not claimed")
	}
	ok, err = st.ClaimBootstrap(ctx(t), "ocid1.tenancy.oc1..b", now)
	must(t, err, "second claim")
	if ok {
		t.Fatal("second claim: claimed again")
	}
	_, err = st.ClaimBootstrap(ctx(t), "", now)
	if err == nil {
		t.Fatal("claim without a tenancy ID: no error")
	}
}
