package phonestore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/faultservers"
	"github.com/wxsession/wxsession/internal/phonestore"
	"github.com/wxsession/wxsession/internal/testutil"
)

// Numbers of the race tests, all in app wxa.
var (
	numB = phonestore.Phone{PhoneNumber: "13800138021", PurePhoneNumber: "13800138021", CountryCode: "86"}
	numC = phonestore.Phone{PhoneNumber: "13800138022", PurePhoneNumber: "13800138022", CountryCode: "86"}
	numD = phonestore.Phone{PhoneNumber: "13800138023", PurePhoneNumber: "13800138023", CountryCode: "86"}
)

const raceUser, raceOther = "wxa#oRace", "wxa#oOther"

// raceEnv is one row's tables, its clock and a plain store on them; actor
// adds a store of its own behind a faultservers.Gate, so that a test holds
// one concurrent call's requests and not another's.
type raceEnv struct {
	t             *testing.T
	ctx           context.Context
	db            *dynamodb.Client
	phones, users string
	clock         *testutil.Clock
	st            *phonestore.Store
}

func newRaceEnv(t *testing.T) *raceEnv {
	t.Helper()
	db := dynalitetest.Client(t, srv)
	names := dynalitetest.Tables(t, db, "PhonesTable", "UsersTable")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	e := &raceEnv{t: t, ctx: ctx, db: db, phones: names["PhonesTable"], users: names["UsersTable"], clock: testutil.NewClock(time.Now())}
	e.st = e.store(db)
	return e
}

func (e *raceEnv) store(db *dynamodb.Client) *phonestore.Store {
	st, err := phonestore.NewStore(db, e.phones, e.users, e.clock.Now)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// actor is a store whose requests go through its own gate.
type actor struct {
	e    *raceEnv
	gate *faultservers.Gate
	st   *phonestore.Store
}

func (e *raceEnv) actor() *actor { return e.actorOn(nil) }

// actorOn is an actor whose gate sends on through next (nil: a plain
// client), such as a faultservers.LoseAnswer.
func (e *raceEnv) actorOn(next faultservers.Doer) *actor {
	g := faultservers.NewGate(next)
	return &actor{e: e, gate: g, st: e.store(dynalitetest.Client(e.t, srv, func(o *dynamodb.Options) { o.HTTPClient = g }))}
}

// call is a store call running in its own goroutine.
type call struct {
	done chan struct{}
	err  error
}

// bind starts Bind(user, p) with PHONE_UNIQUE.
func (a *actor) bind(user string, p phonestore.Phone) *call {
	c := &call{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = a.st.Bind(a.e.ctx, user, "wxa", p, true)
	}()
	return c
}

func (c *call) wait(t *testing.T) error {
	t.Helper()
	<-c.done
	return c.err
}

// held waits until h holds its request; false if c ended first (this
// version of the store does not send that request there).
func held(t *testing.T, h *faultservers.Held, c *call) bool {
	t.Helper()
	select {
	case <-h.Arrived():
		return true
	case <-c.done:
		t.Logf("the call ended (%v) without sending the request to hold", c.err)
		return false
	}
}

// binding's PutItem carries bound_at; no other request does.
const bindingPut = `"bound_at"`

// TestBindInterleavings drives concurrent binds of one user (and another
// user's claim) request by request, through the orders that broke
// PHONE_UNIQUE, then checks the invariants of docs/design.md §7.4 (see
// checkPhones) and that another user cannot bind a number bound to the
// user.
func TestBindInterleavings(t *testing.T) {
	tests := []struct {
		name    string
		crashed bool // the row simulates a crash: leftovers allowed (checkPhones)
		run     func(t *testing.T, e *raceEnv)
	}{
		// Bound to B; binds of B (again) and C overlap: B's bind reads
		// the binding (B) and waits before writing it; C's bind writes C
		// and waits before releasing B's claim; B's bind writes B
		// (replacing C, releasing C's claim); then C's bind releases B's
		// claim: B bound, unclaimed.
		{"B again and C: the release of the replaced B hits the B bound again", false, func(t *testing.T, e *raceEnv) {
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numB, true); err != nil {
				t.Fatal(err)
			}
			again, other := e.actor(), e.actor()
			hAgain := again.gate.Hold("PutItem", bindingPut)
			cAgain := again.bind(raceUser, numB)
			held(t, hAgain, cAgain)
			hOther := other.gate.Hold("DeleteItem", "")
			cOther := other.bind(raceUser, numC)
			held(t, hOther, cOther)
			hAgain.Release()
			if err := cAgain.wait(t); err != nil {
				t.Fatalf("bind B again: %v", err)
			}
			hOther.Release()
			if err := cOther.wait(t); err != nil {
				t.Fatalf("bind C: %v", err)
			}
		}},
		// Bound to D; binds of B, C and B again, each held before its
		// binding's write, then let go in that order: C's write releases
		// B's claim, which the second B had claimed again before.
		{"B, C, B held before their writes, let go in that order", false, func(t *testing.T, e *raceEnv) {
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numD, true); err != nil {
				t.Fatal(err)
			}
			b1, c, b2 := e.actor(), e.actor(), e.actor()
			h1 := b1.gate.Hold("PutItem", bindingPut)
			c1 := b1.bind(raceUser, numB)
			held(t, h1, c1)
			h2 := c.gate.Hold("PutItem", bindingPut)
			c2 := c.bind(raceUser, numC)
			held(t, h2, c2)
			h3 := b2.gate.Hold("PutItem", bindingPut)
			c3 := b2.bind(raceUser, numB)
			held(t, h3, c3)
			for _, step := range []struct {
				h *faultservers.Held
				c *call
			}{{h1, c1}, {h2, c2}, {h3, c3}} {
				step.h.Release()
				if err := step.c.wait(t); err != nil {
					t.Fatal(err)
				}
			}
		}},
		// Bound to D; C's bind claims C and waits before writing; D's
		// binding is replaced by B meanwhile: C's write meets a binding
		// it did not read. No claim may stay for C (nor D).
		{"a bind overtaken between its claim and its write", false, func(t *testing.T, e *raceEnv) {
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numD, true); err != nil {
				t.Fatal(err)
			}
			slow := e.actor()
			h := slow.gate.Hold("PutItem", bindingPut)
			c := slow.bind(raceUser, numC)
			held(t, h, c)
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numB, true); err != nil {
				t.Fatal(err)
			}
			h.Release()
			if err := c.wait(t); err != nil {
				t.Fatal(err)
			}
		}},
		// An unbind between a bind's claim and its write.
		{"an unbind between a bind's claim and its write", false, func(t *testing.T, e *raceEnv) {
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numD, true); err != nil {
				t.Fatal(err)
			}
			slow := e.actor()
			h := slow.gate.Hold("PutItem", bindingPut)
			c := slow.bind(raceUser, numC)
			held(t, h, c)
			if _, _, err := e.st.Unbind(e.ctx, raceUser, "wxa"); err != nil {
				t.Fatal(err)
			}
			h.Release()
			if err := c.wait(t); err != nil {
				t.Fatal(err)
			}
		}},
		// The user's binding vanished (a crash, §7.4) and its claim of B
		// is older than the grace: another user sees it stale and is
		// about to take it over when the user binds B again (claiming it
		// anew). The takeover must then fail.
		{"a stale claim taken over while its owner binds it again", true, func(t *testing.T, e *raceEnv) {
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numB, true); err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.DeleteItem(e.ctx, &dynamodb.DeleteItemInput{TableName: aws.String(e.phones), Key: map[string]types.AttributeValue{
				"user": &types.AttributeValueMemberS{Value: raceUser}, "item": &types.AttributeValueMemberS{Value: "phone"}}}); err != nil {
				t.Fatal(err)
			}
			e.clock.Add(phonestore.ClaimGrace)
			thief := e.actor()
			h := thief.gate.Hold("PutItem", ":old")
			c := thief.bind(raceOther, numB)
			held(t, h, c)
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numB, true); err != nil {
				t.Fatalf("the owner binding B again: %v", err)
			}
			h.Release()
			if err := c.wait(t); !errors.Is(err, phonestore.ErrPhoneInUse) {
				t.Errorf("the takeover: %v, want ErrPhoneInUse", err)
			}
		}},
		// The user's takeover of another user's stale claim of B is
		// applied and its answer lost; before the SDK's retry goes out,
		// a second bind of B by the same user adds its token to the
		// (now the user's) claim and writes its binding. The retry must
		// not replace the claim (and its token set) again: the first
		// bind's write then fails and takes its token out, which must
		// leave the second bind's token, not delete the claim of a bound
		// number.
		{"a takeover's lost answer retried after the owner's second bind", false, func(t *testing.T, e *raceEnv) {
			if err := e.st.Bind(e.ctx, raceOther, "wxa", numB, true); err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.DeleteItem(e.ctx, &dynamodb.DeleteItemInput{TableName: aws.String(e.phones), Key: map[string]types.AttributeValue{
				"user": &types.AttributeValueMemberS{Value: raceOther}, "item": &types.AttributeValueMemberS{Value: "phone"}}}); err != nil {
				t.Fatal(err)
			}
			e.clock.Add(phonestore.ClaimGrace)
			lose := faultservers.NewLoseAnswer(nil)
			first := e.actorOn(lose)
			// The takeover goes out at once (its answer is lost); its
			// retry is held.
			first.gate.Hold("PutItem", ":old").Release()
			retry := first.gate.Hold("PutItem", ":old")
			lose.Lose(":old", 1)
			c := first.bind(raceUser, numB)
			if !held(t, retry, c) {
				if lose.Lost() == 0 {
					t.Fatal("the takeover's answer was not lost")
				}
				if err := c.wait(t); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numB, true); err != nil {
				t.Fatalf("the second bind of B: %v", err)
			}
			retry.Release()
			if err := c.wait(t); err != nil {
				t.Fatalf("the first bind of B: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newRaceEnv(t)
			tc.run(t, e)
			checkPhones(t, e, tc.crashed)
			// The consequence of a broken invariant: another user binds a
			// number the user has bound.
			bound, err := e.st.Phone(e.ctx, raceUser)
			if errors.Is(err, phonestore.ErrNotFound) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := e.st.Bind(e.ctx, "wxa#oProbe", "wxa", bound, true); !errors.Is(err, phonestore.ErrPhoneInUse) {
				t.Errorf("another user binding %s, bound to %s: %v, want ErrPhoneInUse", bound.Masked(), raceUser, err)
			}
		})
	}
}

// unbindCall is an Unbind running in its own goroutine.
type unbindCall struct {
	call
	phone phonestore.Phone
	had   bool
}

// unbind starts Unbind(user).
func (a *actor) unbind(user string) *unbindCall {
	c := &unbindCall{call: call{done: make(chan struct{})}}
	go func() {
		defer close(c.done)
		c.phone, c.had, c.err = a.st.Unbind(a.e.ctx, user, "wxa")
	}()
	return c
}

// bindingDelete: the condition of Unbind's DeleteItem of a binding with a
// token; no other request has it.
const bindingDelete = `"#tk = :tk"`

// TestUnbindInterleavings: a bind of the same user meets an Unbind between
// its read of the binding and its DeleteItem, with or without the delete's
// answer lost (docs/design.md §3.10). Unbind must report the number it
// removed, remove no binding written after its delete landed, and leave the
// invariants of §7.4 (checkPhones).
func TestUnbindInterleavings(t *testing.T) {
	tests := []struct {
		name string
		// run binds B, runs an Unbind of the user through a, and binds C
		// in between; it returns the Unbind.
		run       func(t *testing.T, e *raceEnv) *unbindCall
		wantGone  phonestore.Phone // what Unbind reports removed
		wantBound *phonestore.Phone
	}{
		// The bind replaces B by C between the unbind's read and its
		// delete: the delete removes C, reported as C.
		{"a bind between the read and the delete", func(t *testing.T, e *raceEnv) *unbindCall {
			a := e.actor()
			h := a.gate.Hold("DeleteItem", bindingDelete)
			c := a.unbind(raceUser)
			held(t, h, &c.call)
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numC, true); err != nil {
				t.Fatal(err)
			}
			h.Release()
			return c
		}, numC, nil},
		// The same with the delete's answer lost: the SDK's retry finds
		// nothing to delete. Before the fix the unbind reported B (the
		// number read) and C's claim stayed, held by nobody's binding.
		{"a bind between the read and the delete, the delete's answer lost", func(t *testing.T, e *raceEnv) *unbindCall {
			lose := faultservers.NewLoseAnswer(nil)
			a := e.actorOn(lose)
			h := a.gate.Hold("DeleteItem", bindingDelete)
			lose.Lose(bindingDelete, 1)
			c := a.unbind(raceUser)
			held(t, h, &c.call)
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numC, true); err != nil {
				t.Fatal(err)
			}
			h.Release()
			if err := c.wait(t); err == nil && lose.Lost() == 0 {
				t.Fatal("the delete's answer was not lost")
			}
			return c
		}, numC, nil},
		// The delete of B lands and its answer is lost; before the SDK's
		// retry goes out, a bind of C (reading no binding) writes C. The
		// retry must not delete C: the unbind removed B.
		{"a bind between the landed delete and its retry", func(t *testing.T, e *raceEnv) *unbindCall {
			lose := faultservers.NewLoseAnswer(nil)
			a := e.actorOn(lose)
			a.gate.Hold("DeleteItem", bindingDelete).Release()
			retry := a.gate.Hold("DeleteItem", bindingDelete)
			lose.Lose(bindingDelete, 1)
			c := a.unbind(raceUser)
			if !held(t, retry, &c.call) {
				t.Fatal("the delete was not retried")
			}
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numC, true); err != nil {
				t.Fatal(err)
			}
			retry.Release()
			return c
		}, numB, &numC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newRaceEnv(t)
			if err := e.st.Bind(e.ctx, raceUser, "wxa", numB, true); err != nil {
				t.Fatal(err)
			}
			c := tc.run(t, e)
			if err := c.wait(t); err != nil || !c.had || c.phone != tc.wantGone {
				t.Errorf("Unbind = %s, %v, %v; want %s removed", c.phone.Masked(), c.had, err, tc.wantGone.Masked())
			}
			got, err := e.st.Phone(e.ctx, raceUser)
			switch {
			case tc.wantBound == nil && !errors.Is(err, phonestore.ErrNotFound):
				t.Errorf("bound afterwards: %s, %v; want none", got.Masked(), err)
			case tc.wantBound != nil && (err != nil || got != *tc.wantBound):
				t.Errorf("bound afterwards: %s, %v; want %s", got.Masked(), err, tc.wantBound.Masked())
			}
			checkPhones(t, e, false)
		})
	}
}

// TestBindConcurrentInvariants: goroutines of one user rebind (and now and
// then unbind) among three numbers while another user tries to bind the
// same numbers; at the end the invariants hold (checkPhones). Timing
// decides the interleavings here (TestBindInterleavings forces the known
// bad ones): before the fix it failed about one run in two or three.
func TestBindConcurrentInvariants(t *testing.T) {
	const workers, rounds = 8, 25
	e := newRaceEnv(t)
	nums := []phonestore.Phone{numB, numC, numD}
	var wg sync.WaitGroup
	errs := make(chan error, (workers+1)*rounds)
	for w := range workers + 1 {
		user := raceUser
		if w == workers {
			user = raceOther
		}
		st := e.store(dynalitetest.Client(t, srv)) // a client (and connections) of its own
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range rounds {
				var err error
				switch {
				case user == raceOther:
					// The other user takes a number whenever it is free and
					// gives it back at once (holding it would lock the user
					// out of it for the rest of the test).
					if err = st.Bind(e.ctx, user, "wxa", nums[r.IntN(len(nums))], true); err == nil {
						_, _, err = st.Unbind(e.ctx, user, "wxa")
					}
				case r.IntN(8) == 0:
					_, _, err = st.Unbind(e.ctx, user, "wxa")
				default:
					err = st.Bind(e.ctx, user, "wxa", nums[r.IntN(len(nums))], true)
				}
				if err != nil && !errors.Is(err, phonestore.ErrPhoneInUse) {
					errs <- fmt.Errorf("%s: %w", user, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkPhones(t, e, false)
}

// checkPhones checks the phones table against the invariants of
// docs/design.md §7.4 (PHONE_UNIQUE):
//   - a bound number has a claim owned by its binder (so no number is
//     bound to two users), and the claim's tokens include the binding's;
//   - a claim's owner has that number bound, and the claim holds that
//     binding's token only: with no crash (and no lost answer), no claim
//     is left behind for a takeover after ClaimGrace. After a crash
//     (crashed) such leftovers are allowed: the stale claims of §7.4.
func checkPhones(t *testing.T, e *raceEnv, crashed bool) {
	t.Helper()
	out, err := e.db.Scan(e.ctx, &dynamodb.ScanInput{TableName: aws.String(e.phones), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	str := func(it map[string]types.AttributeValue, k string) string {
		v, _ := it[k].(*types.AttributeValueMemberS)
		if v == nil {
			return ""
		}
		return v.Value
	}
	type claim struct {
		owner  string
		tokens []string
	}
	bound := map[string][]string{} // number -> users
	token := map[string]string{}   // user -> its binding's token
	number := map[string]string{}  // user -> its bound number
	claims := map[string]claim{}   // number -> claim
	for _, it := range out.Items {
		switch u, item := str(it, "user"), str(it, "item"); {
		case item == "phone" && str(it, "pure_phone_number") != "":
			nr := "wxa#" + str(it, "country_code") + "#" + str(it, "pure_phone_number")
			bound[nr] = append(bound[nr], u)
			number[u], token[u] = nr, str(it, "claim_token")
		case item == "claim":
			c := claim{owner: str(it, "owner")}
			if ss, ok := it["tokens"].(*types.AttributeValueMemberSS); ok {
				c.tokens = slices.Sorted(slices.Values(ss.Value))
			}
			claims[strings.TrimPrefix(u, "number#")] = c
		}
	}
	masked := func(nr string) string { return "***" + nr[len(nr)-4:] }
	for nr, users := range bound {
		if len(users) > 1 {
			t.Errorf("%s bound to %d users: %v", masked(nr), len(users), users)
		}
		for _, u := range users {
			c, ok := claims[nr]
			switch {
			case !ok:
				t.Errorf("%s bound to %s without a claim", masked(nr), u)
			case c.owner != u:
				t.Errorf("%s bound to %s, claimed by %s", masked(nr), u, c.owner)
			case token[u] != "" && !slices.Contains(c.tokens, token[u]):
				t.Errorf("%s bound to %s with token %s, the claim holds %v", masked(nr), u, token[u], c.tokens)
			}
		}
	}
	for nr, c := range claims {
		switch {
		case crashed:
		case number[c.owner] != nr:
			t.Errorf("%s claimed by %s, which has %q bound: a claim left behind", masked(nr), c.owner, number[c.owner])
		case token[c.owner] != "" && !slices.Equal(c.tokens, []string{token[c.owner]}):
			t.Errorf("%s claimed with tokens %v, its binding's is %s: tokens left behind", masked(nr), c.tokens, token[c.owner])
		}
	}
}

// TestStartCodeInterleavings: a StartCode whose put fails on another
// request's live record reads that record; what the other request does in
// between (gives the code up, finishes it) must give an answer the handler
// can act on, never ErrNotFound (a store error: 500 server_misconfigured).
func TestStartCodeInterleavings(t *testing.T) {
	const code = "code-race"
	tests := []struct {
		name        string
		between     func(t *testing.T, e *raceEnv)
		wantStarted bool
		wantState   string
	}{
		{"the other request gives the code up", func(t *testing.T, e *raceEnv) {
			e.st.AbandonCode(e.ctx, raceUser, code)
		}, true, "pending"},
		{"the other request finishes the code", func(t *testing.T, e *raceEnv) {
			if err := e.st.FinishCode(e.ctx, raceUser, code, phonestore.CodeRecord{Phone: numB}); err != nil {
				t.Fatal(err)
			}
		}, false, "done"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newRaceEnv(t)
			if _, started, err := e.st.StartCode(e.ctx, raceUser, code, 15*time.Second); err != nil || !started {
				t.Fatalf("first StartCode: %v, %v", started, err)
			}
			a := e.actor()
			h := a.gate.Hold("GetItem", "code#")
			type result struct {
				rec     phonestore.CodeRecord
				started bool
				err     error
			}
			res := make(chan result, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				rec, started, err := a.st.StartCode(e.ctx, raceUser, code, 15*time.Second)
				res <- result{rec, started, err}
			}()
			select {
			case <-h.Arrived():
			case <-done:
				t.Fatalf("the second StartCode ended without reading the record: %+v", <-res)
			}
			tc.between(t, e)
			h.Release()
			r := <-res
			if r.err != nil || r.started != tc.wantStarted || r.rec.State != tc.wantState {
				t.Errorf("second StartCode = %q, started %v, %v; want %q, started %v, no error", r.rec.State, r.started, r.err, tc.wantState, tc.wantStarted)
			}
		})
	}
}
