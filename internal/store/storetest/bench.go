package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// Bench runs the store benchmarks; open returns a fresh, empty store and
// arranges for it to be closed.
func Bench(b *testing.B, open func(tb testing.TB) store.Store) {
	ctx := context.Background()
	b.Run("InsertModel", func(b *testing.B) {
		st := open(b)
		i := 0
		for b.Loop() {
			i++
			if err := st.InsertModel(ctx, customModel(fmt.Sprintf("m%d", i), "ten1", "comp1", fmt.Sprintf("n%d", i), "1")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetModel", func(b *testing.B) {
		st := open(b)
		if err := st.InsertModel(ctx, customModel("m1", "ten1", "comp1", "n", "1")); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := st.GetModel(ctx, "m1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListModels100of1000", func(b *testing.B) {
		st := open(b)
		if err := st.InTx(ctx, func(tx store.Tx) error {
			for i := range 1000 {
				m := customModel(fmt.Sprintf("m%04d", i), "ten1", "comp1", fmt.Sprintf("n%d", i), "1")
				m.TimeCreated = t0.Add(time.Duration(i) * time.Second)
				if err := tx.InsertModel(ctx, m); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		q := store.ListQuery{TenancyID: "ten1", CompartmentID: "comp1", IncludeBase: true, Limit: 100}
		for b.Loop() {
			p, err := st.ListModels(ctx, q)
			if err != nil || len(p.Items) != 100 {
				b.Fatal(len(p.Items), err)
			}
		}
	})
	b.Run("EnqueueClaimFinish", func(b *testing.B) {
		st := open(b)
		for b.Loop() {
			if err := st.EnqueueJob(ctx, &core.Job{Kind: "k", Queue: "q"}); err != nil {
				b.Fatal(err)
			}
			j, err := st.ClaimJob(ctx, "w", time.Now(), time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if err := st.FinishJob(ctx, j.ID, "w", core.JobSucceeded, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ClaimEmptyWith1000Finished", func(b *testing.B) {
		st := open(b)
		if err := st.InTx(ctx, func(tx store.Tx) error {
			for range 1000 {
				if err := tx.EnqueueJob(ctx, &core.Job{Kind: "k", Queue: "q"}); err != nil {
					return err
				}
				j, err := tx.ClaimJob(ctx, "w", time.Now(), time.Minute)
				if err != nil {
					return err
				}
				if err := tx.FinishJob(ctx, j.ID, "w", core.JobSucceeded, ""); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := st.ClaimJob(ctx, "w", time.Now(), time.Minute); !errors.Is(err, store.ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
}
