// Package pushtest is the conformance suite every push.Store passes: the
// memory store and the Redis store run the same cases.
package pushtest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"northd/internal/events"
	"northd/internal/push"
	"northd/internal/testdeps"
)

// NewStore makes an empty store of its own for one case.
type NewStore func(t *testing.T) push.Store

// Run runs every case against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, push.Store)
	}{
		{"CreateListUpdateDelete", testCRUD},
		{"Bounds", testBounds},
		{"Lease", testLease},
		{"Failing", testFailing},
		{"Pending", testPending},
		{"ClearFailing", testClearFailing},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
}

var ctx = context.Background()

func record(id, username, ip string) *push.Record {
	return &push.Record{ID: id, Username: username, IP: netip.MustParseAddr(ip), URL: "http://" + ip + ":8080/hook",
		Types: []string{"alarm"}, Created: time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC), Secrets: []push.Secret{{Key: []byte("0123456789abcdef01234567")}}}
}

func testCRUD(t *testing.T, s push.Store) {
	r := record("sub_1", "north-1", "192.0.2.1")
	if err := s.Create(ctx, r, events.ID{Epoch: "e1", Seq: 7}, 10, 100); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx)
	if err != nil || len(all) != 1 || all[0].ID != "sub_1" || all[0].Username != "north-1" || all[0].IP != r.IP ||
		all[0].URL != r.URL || len(all[0].Types) != 1 || !all[0].Created.Equal(r.Created) || string(all[0].Secrets[0].Key) != "0123456789abcdef01234567" || all[0].Disabled {
		t.Fatalf("List: %+v %v", all, err)
	}
	if c, pending, found, err := s.Cursor(ctx, "sub_1"); err != nil || !found || c != (events.ID{Epoch: "e1", Seq: 7}) || !pending.IsZero() {
		t.Errorf("Cursor: %v %v %v %v", c, pending, found, err)
	}
	r.Disabled = true
	r.Secrets = append([]push.Secret{{Key: []byte("fedcba9876543210fedcba98")}}, push.Secret{Key: r.Secrets[0].Key, Until: r.Created.Add(time.Hour)})
	if found, err := s.Update(ctx, r); err != nil || !found {
		t.Fatalf("Update: %v %v", found, err)
	}
	all, _ = s.List(ctx)
	if !all[0].Disabled || len(all[0].Secrets) != 2 || !all[0].Secrets[1].Until.Equal(r.Created.Add(time.Hour)) {
		t.Errorf("after Update: %+v", all[0])
	}
	if found, err := s.Update(ctx, record("sub_none", "x", "192.0.2.9")); err != nil || found {
		t.Errorf("Update of no subscription: %v %v", found, err)
	}
	if found, err := s.Delete(ctx, "sub_1"); err != nil || !found {
		t.Errorf("Delete: %v %v", found, err)
	}
	if found, _ := s.Delete(ctx, "sub_1"); found {
		t.Error("deleted twice")
	}
	if _, _, found, _ := s.Cursor(ctx, "sub_1"); found {
		t.Error("a deleted subscription's cursor is still there")
	}
	if ok, _ := s.Lease(ctx, "sub_1", "a", time.Minute); ok {
		t.Error("a deleted subscription's lease was taken")
	}
}

func testBounds(t *testing.T, s push.Store) {
	for i, c := range []struct {
		id, user, ip string
		want         error
	}{
		{"s1", "north-1", "192.0.2.1", nil},
		{"s2", "north-1", "192.0.2.1", nil},
		{"s3", "north-1", "192.0.2.1", push.ErrTooMany}, // two per north server
		{"s4", "north-1", "192.0.2.2", nil},             // the same username at another ip is another north server
		{"s5", "north-2", "192.0.2.3", push.ErrTooMany}, // three in all
	} {
		if err := s.Create(ctx, record(c.id, c.user, c.ip), events.ID{}, 2, 3); err != c.want {
			t.Errorf("create %d: %v, want %v", i, err, c.want)
		}
	}
}

// One holder at a time; another takes over once the holder stops
// renewing; a cursor moves only for the holder.
func testLease(t *testing.T, s push.Store) {
	if err := s.Create(ctx, record("sub_1", "north-1", "192.0.2.1"), events.ID{Epoch: "e", Seq: 1}, 10, 10); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		holder string
		want   bool
	}{{"a", true}, {"b", false}, {"a", true}} {
		if ok, err := s.Lease(ctx, "sub_1", c.holder, 500*time.Millisecond); err != nil || ok != c.want {
			t.Fatalf("Lease for %s: %v %v, want %v", c.holder, ok, err, c.want)
		}
	}
	if ok, _ := s.Advance(ctx, "sub_1", "b", events.ID{Epoch: "e", Seq: 1}, events.ID{Epoch: "e", Seq: 9}); ok {
		t.Error("a cursor moved for a holder without the lease")
	}
	if ok, _ := s.Advance(ctx, "sub_1", "a", events.ID{Epoch: "e", Seq: 1}, events.ID{Epoch: "e", Seq: 2}); !ok {
		t.Error("the holder's cursor did not move")
	}
	testdeps.WaitFor(t, "b to take the lease a stopped renewing", func() bool {
		ok, err := s.Lease(ctx, "sub_1", "b", time.Minute)
		return err == nil && ok
	})
	if ok, _ := s.Advance(ctx, "sub_1", "a", events.ID{Epoch: "e", Seq: 2}, events.ID{Epoch: "e", Seq: 3}); ok {
		t.Error("the old holder moved the cursor after losing the lease")
	}
	if c, _, _, _ := s.Cursor(ctx, "sub_1"); c != (events.ID{Epoch: "e", Seq: 2}) {
		t.Errorf("cursor %v, want e-2", c)
	}
	// b delivers and lets the lease lapse; a, which stalled past its
	// lease with the cursor at e-2, takes it again: its view of the
	// cursor is stale, and moves nothing.
	if ok, _ := s.Advance(ctx, "sub_1", "b", events.ID{Epoch: "e", Seq: 2}, events.ID{Epoch: "e", Seq: 4}); !ok {
		t.Fatal("the new holder's cursor did not move")
	}
	if ok, _ := s.Lease(ctx, "sub_1", "b", time.Millisecond); !ok {
		t.Fatal("b could not shorten its own lease")
	}
	testdeps.WaitFor(t, "a to take the lease b let lapse", func() bool {
		ok, err := s.Lease(ctx, "sub_1", "a", time.Minute)
		return err == nil && ok
	})
	if ok, _ := s.Advance(ctx, "sub_1", "a", events.ID{Epoch: "e", Seq: 2}, events.ID{Epoch: "e", Seq: 3}); ok {
		t.Error("a holder with a stale cursor moved the cursor back")
	}
	if _, ok, _ := s.Pending(ctx, "sub_1", "a", events.ID{Epoch: "e", Seq: 2}, events.ID{Epoch: "e", Seq: 3}); ok {
		t.Error("a holder with a stale cursor fixed a batch")
	}
	if c, pending, _, _ := s.Cursor(ctx, "sub_1"); c != (events.ID{Epoch: "e", Seq: 4}) || !pending.IsZero() {
		t.Errorf("cursor %v, pending %v, want e-4 and none", c, pending)
	}
}

// The first failure since a delivery was taken is kept, whoever holds the
// lease after it, until the next delivery taken; only the holder records.
func testFailing(t *testing.T, s push.Store) {
	if err := s.Create(ctx, record("sub_1", "north-1", "192.0.2.1"), events.ID{Epoch: "e", Seq: 1}, 10, 10); err != nil {
		t.Fatal(err)
	}
	t1 := time.UnixMilli(1_800_000_000_000)
	if _, ok, err := s.Failing(ctx, "sub_1", "a", t1); ok || err != nil {
		t.Fatalf("Failing without the lease: %v %v", ok, err)
	}
	// Long enough for the three calls on a busy machine.
	if ok, err := s.Lease(ctx, "sub_1", "a", 2*time.Second); !ok || err != nil {
		t.Fatal(ok, err)
	}
	for _, c := range []struct {
		holder string
		since  time.Time
		want   time.Time
		ok     bool
	}{
		{"a", t1, t1, true},
		{"a", t1.Add(time.Minute), t1, true}, // the first is kept
		{"b", t1.Add(2 * time.Minute), time.Time{}, false},
	} {
		got, ok, err := s.Failing(ctx, "sub_1", c.holder, c.since)
		if err != nil || ok != c.ok || !got.Equal(c.want) {
			t.Fatalf("Failing by %s at %v: %v %v %v, want %v %v", c.holder, c.since, got, ok, err, c.want, c.ok)
		}
	}
	// Another holder, after a lapsed lease, goes on with the same time.
	testdeps.WaitFor(t, "b to take the lease a stopped renewing", func() bool {
		ok, err := s.Lease(ctx, "sub_1", "b", time.Minute)
		return err == nil && ok
	})
	if got, ok, _ := s.Failing(ctx, "sub_1", "b", t1.Add(3*time.Minute)); !ok || !got.Equal(t1) {
		t.Errorf("the next holder's failing time %v %v, want %v", got, ok, t1)
	}
	// A delivery taken clears it.
	if ok, _ := s.Advance(ctx, "sub_1", "b", events.ID{Epoch: "e", Seq: 1}, events.ID{Epoch: "e", Seq: 2}); !ok {
		t.Fatal("Advance by the holder refused")
	}
	t4 := t1.Add(4 * time.Minute)
	if got, ok, _ := s.Failing(ctx, "sub_1", "b", t4); !ok || !got.Equal(t4) {
		t.Errorf("after a delivery taken: %v %v, want %v", got, ok, t4)
	}
	// So does the end of the subscription.
	if ok, _ := s.Delete(ctx, "sub_1"); !ok {
		t.Fatal("Delete refused")
	}
	if err := s.Create(ctx, record("sub_1", "north-1", "192.0.2.1"), events.ID{Epoch: "e", Seq: 1}, 10, 10); err != nil {
		t.Fatal(err)
	}
	s.Lease(ctx, "sub_1", "c", time.Minute)
	t5 := t1.Add(5 * time.Minute)
	if got, ok, _ := s.Failing(ctx, "sub_1", "c", t5); !ok || !got.Equal(t5) {
		t.Errorf("a subscription made again under the same id: %v %v, want %v", got, ok, t5)
	}
}

// A batch's end, once recorded by the holder, stays for every later
// holder until a delivery taken moves the cursor to it.
func testPending(t *testing.T, s push.Store) {
	if err := s.Create(ctx, record("sub_1", "north-1", "192.0.2.1"), events.ID{Epoch: "e", Seq: 1}, 10, 10); err != nil {
		t.Fatal(err)
	}
	e1, e5, e7 := events.ID{Epoch: "e", Seq: 1}, events.ID{Epoch: "e", Seq: 5}, events.ID{Epoch: "e", Seq: 7}
	if _, ok, err := s.Pending(ctx, "sub_1", "a", e1, e5); ok || err != nil {
		t.Fatalf("Pending without the lease: %v %v", ok, err)
	}
	if ok, err := s.Lease(ctx, "sub_1", "a", 2*time.Second); !ok || err != nil {
		t.Fatal(ok, err)
	}
	for _, c := range []struct {
		holder   string
		end, got events.ID
		ok       bool
	}{
		{"a", e5, e5, true},
		{"a", e7, e5, true}, // the first is kept
		{"b", e7, events.ID{}, false},
	} {
		got, ok, err := s.Pending(ctx, "sub_1", c.holder, e1, c.end)
		if err != nil || ok != c.ok || got != c.got {
			t.Fatalf("Pending by %s of %v: %v %v %v, want %v %v", c.holder, c.end, got, ok, err, c.got, c.ok)
		}
	}
	testdeps.WaitFor(t, "b to take the lease a stopped renewing", func() bool {
		ok, err := s.Lease(ctx, "sub_1", "b", time.Minute)
		return err == nil && ok
	})
	if c, pending, found, err := s.Cursor(ctx, "sub_1"); err != nil || !found || c != (events.ID{Epoch: "e", Seq: 1}) || pending != e5 {
		t.Errorf("the next holder reads %v %v %v %v, want e-1 and the pending e-5", c, pending, found, err)
	}
	if ok, _ := s.Advance(ctx, "sub_1", "b", e1, e5); !ok {
		t.Fatal("Advance by the holder refused")
	}
	if c, pending, _, _ := s.Cursor(ctx, "sub_1"); c != e5 || !pending.IsZero() {
		t.Errorf("after the batch was taken: %v, pending %v, want e-5 and none", c, pending)
	}
	if got, ok, _ := s.Pending(ctx, "sub_1", "b", e5, e7); !ok || got != e7 {
		t.Errorf("the next batch's end: %v %v, want e-7", got, ok)
	}
	// The end of the subscription ends it too.
	if ok, _ := s.Delete(ctx, "sub_1"); !ok {
		t.Fatal("Delete refused")
	}
	if err := s.Create(ctx, record("sub_1", "north-1", "192.0.2.1"), events.ID{Epoch: "e", Seq: 1}, 10, 10); err != nil {
		t.Fatal(err)
	}
	if _, pending, _, _ := s.Cursor(ctx, "sub_1"); !pending.IsZero() {
		t.Errorf("a subscription made again under the same id has the pending %v", pending)
	}
}

// An enable forgets the failing time, from any instance: the next failure
// starts it again.
func testClearFailing(t *testing.T, s push.Store) {
	if err := s.Create(ctx, record("sub_1", "north-1", "192.0.2.1"), events.ID{Epoch: "e", Seq: 1}, 10, 10); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Lease(ctx, "sub_1", "a", time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	t1 := time.UnixMilli(1_800_000_000_000)
	if got, ok, _ := s.Failing(ctx, "sub_1", "a", t1); !ok || !got.Equal(t1) {
		t.Fatalf("Failing: %v %v, want %v", got, ok, t1)
	}
	if err := s.ClearFailing(ctx, "sub_1"); err != nil {
		t.Fatal(err)
	}
	t2 := t1.Add(time.Hour)
	if got, ok, _ := s.Failing(ctx, "sub_1", "a", t2); !ok || !got.Equal(t2) {
		t.Errorf("after ClearFailing: %v %v, want %v", got, ok, t2)
	}
}
