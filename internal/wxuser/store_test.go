package wxuser_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/wxuser"
)

var srv *dynalite.Server

func TestMain(m *testing.M) { dynalitetest.Main(m, &srv) }

func newStore(t *testing.T, now func() time.Time) (*wxuser.Store, *dynamodb.Client, string) {
	t.Helper()
	db := dynalitetest.Client(t, srv)
	names := dynalitetest.Tables(t, db, "PhonesTable", "UsersTable")
	phones, users := names["PhonesTable"], names["UsersTable"]
	st, err := wxuser.NewStore(db, phones, users, now)
	if err != nil {
		t.Fatal(err)
	}
	return st, db, phones
}

func TestBindShared(t *testing.T) {
	st, _, _ := newStore(t, nil)
	ctx := context.Background()
	p := wxuser.Phone{PhoneNumber: "13800138000", PurePhoneNumber: "13800138000", CountryCode: "86"}
	for _, u := range []string{"wxa#o1", "wxa#o2"} {
		if err := st.Bind(ctx, u, "wxa", p, false); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"wxa#o1", "wxa#o2"} {
		if got, err := st.Phone(ctx, u); err != nil || got != p {
			t.Errorf("%s: %v %v", u, got, err)
		}
	}
	if _, had, err := st.Unbind(ctx, "wxa#o1", "wxa"); err != nil || !had {
		t.Fatalf("unbind: %v %v", had, err)
	}
	if _, err := st.Phone(ctx, "wxa#o1"); !errors.Is(err, wxuser.ErrNotFound) {
		t.Errorf("after unbind: %v", err)
	}
}

func TestBindUniqueAndStaleClaim(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	st, db, phones := newStore(t, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	ctx := context.Background()
	p := wxuser.Phone{PhoneNumber: "13800138001", PurePhoneNumber: "13800138001", CountryCode: "86"}
	if err := st.Bind(ctx, "wxa#o1", "wxa", p, true); err != nil {
		t.Fatal(err)
	}
	if err := st.Bind(ctx, "wxa#o2", "wxa", p, true); !errors.Is(err, wxuser.ErrPhoneInUse) {
		t.Fatalf("second user: %v", err)
	}
	// The same number in another app is another number.
	if err := st.Bind(ctx, "wxb#o2", "wxb", p, true); err != nil {
		t.Fatalf("other app: %v", err)
	}
	// o1's binding vanishes without the claim being released (a crash, or
	// an account deletion that only removed the binding): the claim is
	// stale and o2 takes it over.
	if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(phones), Key: map[string]types.AttributeValue{
		"user": &types.AttributeValueMemberS{Value: "wxa#o1"}, "item": &types.AttributeValueMemberS{Value: "phone"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Bind(ctx, "wxa#o2", "wxa", p, true); !errors.Is(err, wxuser.ErrPhoneInUse) {
		t.Fatalf("within the grace period: %v", err)
	}
	mu.Lock()
	now = now.Add(wxuser.ClaimGrace)
	mu.Unlock()
	if err := st.Bind(ctx, "wxa#o2", "wxa", p, true); err != nil {
		t.Fatalf("after o1's binding vanished: %v", err)
	}
	// Concurrent claims of a free number: exactly one wins.
	q := wxuser.Phone{PhoneNumber: "13800138002", PurePhoneNumber: "13800138002", CountryCode: "86"}
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := st.Bind(ctx, "wxa#race"+string(rune('a'+i)), "wxa", q, true)
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, wxuser.ErrPhoneInUse):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d users won the number", won.Load())
	}
}

func TestLookupQuota(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 15, 59, 0, 0, time.UTC) // 23:59 in China
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st, _, _ := newStore(t, clock)
	ctx := context.Background()
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.ReserveLookup(ctx, "wxa#q", 5); err == nil {
				ok.Add(1)
			} else if !errors.Is(err, wxuser.ErrLookupLimited) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 {
		t.Fatalf("%d lookups allowed, want 5", ok.Load())
	}
	day, err := st.ReserveLookup(ctx, "wxa#q", 5)
	if !errors.Is(err, wxuser.ErrLookupLimited) || day != "2026-01-01" {
		t.Fatalf("6th: %v on %s", err, day)
	}
	st.RefundLookup(ctx, "wxa#q", day)
	if _, err := st.ReserveLookup(ctx, "wxa#q", 5); err != nil {
		t.Fatalf("after a refund: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Minute) // midnight in China: a new day
	mu.Unlock()
	if day, err := st.ReserveLookup(ctx, "wxa#q", 5); err != nil || day != "2026-01-02" {
		t.Fatalf("next day: %v %s", err, day)
	}
}

func TestCodeRecord(t *testing.T) {
	st, _, _ := newStore(t, nil)
	ctx := context.Background()
	if _, started, err := st.StartCode(ctx, "wxa#c", "code1", time.Minute); err != nil || !started {
		t.Fatalf("first: %v %v", started, err)
	}
	rec, started, err := st.StartCode(ctx, "wxa#c", "code1", time.Minute)
	if err != nil || started || rec.State != "pending" {
		t.Fatalf("second while pending: %+v %v %v", rec, started, err)
	}
	p := wxuser.Phone{PhoneNumber: "1", PurePhoneNumber: "13800000000", CountryCode: "86"}
	if err := st.FinishCode(ctx, "wxa#c", "code1", wxuser.CodeRecord{Phone: p}); err != nil {
		t.Fatal(err)
	}
	rec, started, err = st.StartCode(ctx, "wxa#c", "code1", time.Minute)
	if err != nil || started || rec.State != "done" || rec.Phone != p {
		t.Fatalf("after finish: %+v %v %v", rec, started, err)
	}
	// A pending record whose lease ended is taken over.
	if _, started, _ := st.StartCode(ctx, "wxa#c", "code2", time.Millisecond); !started {
		t.Fatal("code2 not started")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, started, err := st.StartCode(ctx, "wxa#c", "code2", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired lease never taken over")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
