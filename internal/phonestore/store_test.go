package phonestore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/dynalite"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/phonestore"
)

var srv *dynalite.Server

func TestMain(m *testing.M) { dynalitetest.Main(m, &srv) }

func newStore(t *testing.T, now func() time.Time) (*phonestore.Store, *dynamodb.Client, string) {
	t.Helper()
	db := dynalitetest.Client(t, srv)
	names := dynalitetest.Tables(t, db, "PhonesTable", "UsersTable")
	phones, users := names["PhonesTable"], names["UsersTable"]
	st, err := phonestore.NewStore(db, phones, users, now)
	if err != nil {
		t.Fatal(err)
	}
	return st, db, phones
}

func TestBindShared(t *testing.T) {
	st, _, _ := newStore(t, nil)
	ctx := context.Background()
	p := phonestore.Phone{PhoneNumber: "13800138000", PurePhoneNumber: "13800138000", CountryCode: "86"}
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
	if _, err := st.Phone(ctx, "wxa#o1"); !errors.Is(err, phonestore.ErrNotFound) {
		t.Errorf("after unbind: %v", err)
	}
}

func TestBindUniqueAndStaleClaim(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	st, db, phones := newStore(t, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	ctx := context.Background()
	p := phonestore.Phone{PhoneNumber: "13800138001", PurePhoneNumber: "13800138001", CountryCode: "86"}
	if err := st.Bind(ctx, "wxa#o1", "wxa", p, true); err != nil {
		t.Fatal(err)
	}
	if err := st.Bind(ctx, "wxa#o2", "wxa", p, true); !errors.Is(err, phonestore.ErrPhoneInUse) {
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
	if err := st.Bind(ctx, "wxa#o2", "wxa", p, true); !errors.Is(err, phonestore.ErrPhoneInUse) {
		t.Fatalf("within the grace period: %v", err)
	}
	mu.Lock()
	now = now.Add(phonestore.ClaimGrace)
	mu.Unlock()
	if err := st.Bind(ctx, "wxa#o2", "wxa", p, true); err != nil {
		t.Fatalf("after o1's binding vanished: %v", err)
	}
	// Concurrent claims of a free number: exactly one wins.
	q := phonestore.Phone{PhoneNumber: "13800138002", PurePhoneNumber: "13800138002", CountryCode: "86"}
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
			case !errors.Is(err, phonestore.ErrPhoneInUse):
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
	reserved := make(chan phonestore.Lookup, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l, err := st.ReserveLookup(ctx, "wxa#q", 5); err == nil {
				ok.Add(1)
				reserved <- l
			} else if !errors.Is(err, phonestore.ErrLookupLimited) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 {
		t.Fatalf("%d lookups allowed, want 5", ok.Load())
	}
	l, err := st.ReserveLookup(ctx, "wxa#q", 5)
	if !errors.Is(err, phonestore.ErrLookupLimited) || l.Day != "2026-01-01" {
		t.Fatalf("6th: %v on %s", err, l.Day)
	}
	st.RefundLookup(ctx, "wxa#q", l) // refused, nothing to give back
	if _, err := st.ReserveLookup(ctx, "wxa#q", 5); !errors.Is(err, phonestore.ErrLookupLimited) {
		t.Fatalf("after refunding a refused lookup: %v, want ErrLookupLimited", err)
	}
	first := <-reserved
	st.RefundLookup(ctx, "wxa#q", first)
	st.RefundLookup(ctx, "wxa#q", first) // once only
	if _, err := st.ReserveLookup(ctx, "wxa#q", 5); err != nil {
		t.Fatalf("after a refund: %v", err)
	}
	if _, err := st.ReserveLookup(ctx, "wxa#q", 5); !errors.Is(err, phonestore.ErrLookupLimited) {
		t.Fatalf("a refund given twice: %v, want ErrLookupLimited", err)
	}
	mu.Lock()
	now = now.Add(time.Minute) // midnight in China: a new day
	mu.Unlock()
	if l, err := st.ReserveLookup(ctx, "wxa#q", 5); err != nil || l.Day != "2026-01-02" {
		t.Fatalf("next day: %v %s", err, l.Day)
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
	p := phonestore.Phone{PhoneNumber: "1", PurePhoneNumber: "13800000000", CountryCode: "86"}
	if err := st.FinishCode(ctx, "wxa#c", "code1", phonestore.CodeRecord{Phone: p}); err != nil {
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

// TestDeleteUserData: an account deletion removes every phone item of the
// user (binding, its number's claim, lookup counters, code records) and
// nothing of another user; a second deletion finds nothing and succeeds.
func TestDeleteUserData(t *testing.T) {
	st, db, phones := newStore(t, nil)
	ctx := context.Background()
	p := phonestore.Phone{PhoneNumber: "13900139000", PurePhoneNumber: "13900139000", CountryCode: "86"}
	if err := st.Bind(ctx, "wxa#gone", "wxa", p, true); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReserveLookup(ctx, "wxa#gone", 5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.StartCode(ctx, "wxa#gone", "code-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	other := phonestore.Phone{PhoneNumber: "13700137000", PurePhoneNumber: "13700137000", CountryCode: "86"}
	if err := st.Bind(ctx, "wxa#stays", "wxa", other, true); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := st.DeleteUserData(ctx, "wxa", "gone"); err != nil {
			t.Fatal(err)
		}
	}
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(phones), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range out.Items {
		for _, v := range it {
			if sv, ok := v.(*types.AttributeValueMemberS); ok && (strings.Contains(sv.Value, "gone") || strings.Contains(sv.Value, "13900139000")) {
				t.Errorf("an item of the deleted user remains: %v", it)
			}
		}
	}
	if got, err := st.Phone(ctx, "wxa#stays"); err != nil || got != other {
		t.Errorf("another user's binding: %v, %v", got, err)
	}
	// The number is free for someone else at once.
	if err := st.Bind(ctx, "wxa#next", "wxa", p, true); err != nil {
		t.Errorf("binding the deleted user's number: %v", err)
	}
}
