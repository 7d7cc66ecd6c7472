// Package profile is wxsession's example of business data: one profile per
// user, keyed by openid, in its own DynamoDB table (partition key "openid").
//
// It shows the pattern a business function follows: the user comes from the
// authorizer's principal (session.FromRequest), never from the request body,
// and the data lives in a table of its own, not in the session store.
package profile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/dynamoclient"
)

// Limits enforced by Validate.
const (
	MaxNicknameRunes = 32
	MaxAvatarURLLen  = 1024
)

// AttrOpenID is the profiles table's partition key (template.yaml declares
// the table).
const AttrOpenID = "openid"

// DefaultOpTimeout bounds every store operation when Config.OpTimeout is 0.
const DefaultOpTimeout = 3 * time.Second

// ErrInvalid is wrapped by every Validate error; the message after it is
// safe to show the client.
var ErrInvalid = errors.New("invalid profile")

// Profile is a user's profile as stored and returned.
type Profile struct {
	// Nickname is the display name: at most 32 runes of valid UTF-8, no
	// control or invisible formatting characters, no U+FFFD (emoji and
	// their joiners are fine); see Validate.
	Nickname string `json:"nickname" dynamodbav:"nickname"`
	// AvatarURL is empty or an absolute https URL of at most 1024 bytes on
	// a public host; see Validate.
	AvatarURL string `json:"avatar_url" dynamodbav:"avatar_url"`
	// UpdatedAt is when the profile was last written; nil if never.
	UpdatedAt *time.Time `json:"updated_at" dynamodbav:"updated_at,omitempty"`
}

// Validate checks the user-editable fields (docs/design.md §10):
//
//   - nickname: at most 32 runes of valid UTF-8; no control characters
//     (Cc), line or paragraph separators, U+FFFD, and no format characters
//     (Cf: bidi overrides and isolates, zero-width spaces, soft hyphens, the
//     BOM, tag characters), except a zero-width joiner between two emoji
//     (emoji sequences such as 👩‍💻);
//   - avatar_url: empty, or an absolute https URL of at most 1024 bytes,
//     without spaces, control characters, quotes, angle brackets,
//     backslashes or user info, whose host is not an IP literal of a
//     loopback, private, link-local, unspecified, shared (100.64/10) or
//     multicast address, not a non-canonical numeric host (127.1, 0x7f.1,
//     2130706433) and not a local name (localhost, *.localhost, *.local,
//     *.internal, *.home.arpa, or a single label).
func (p Profile) Validate() error {
	if err := validateNickname(p.Nickname); err != nil {
		return err
	}
	if p.AvatarURL == "" {
		return nil
	}
	if len(p.AvatarURL) > MaxAvatarURLLen {
		return fmt.Errorf("%w: avatar_url is longer than %d bytes", ErrInvalid, MaxAvatarURLLen)
	}
	if strings.ContainsFunc(p.AvatarURL, func(r rune) bool { return r <= ' ' || r == 0x7f || r == utf8.RuneError }) {
		return fmt.Errorf("%w: avatar_url contains spaces or control characters", ErrInvalid)
	}
	if strings.ContainsAny(p.AvatarURL, "\"'`<>\\") {
		return fmt.Errorf("%w: avatar_url contains quotes, angle brackets or backslashes", ErrInvalid)
	}
	u, err := url.Parse(p.AvatarURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%w: avatar_url must be an absolute https URL", ErrInvalid)
	}
	if u.User != nil {
		return fmt.Errorf("%w: avatar_url must not contain user info", ErrInvalid)
	}
	if !publicHost(u.Hostname()) {
		return fmt.Errorf("%w: avatar_url must point at a public host (not loopback, private, link-local or a local name)", ErrInvalid)
	}
	return nil
}

func validateNickname(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: nickname is not valid UTF-8", ErrInvalid)
	}
	if n := utf8.RuneCountInString(s); n > MaxNicknameRunes {
		return fmt.Errorf("%w: nickname has %d characters, at most %d allowed", ErrInvalid, n, MaxNicknameRunes)
	}
	prev := utf8.RuneError // the previous rune, variation selectors skipped
	for i, r := range s {
		switch {
		case unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
			return fmt.Errorf("%w: nickname contains a control character", ErrInvalid)
		case r == utf8.RuneError: // what a lone surrogate escape decodes to
			return fmt.Errorf("%w: nickname contains an invalid character (U+FFFD)", ErrInvalid)
		case r == zeroWidthJoiner:
			next, _ := utf8.DecodeRuneInString(s[i+len(string(r)):])
			if !pictograph(prev) || !pictograph(next) {
				return fmt.Errorf("%w: nickname contains a zero-width joiner outside an emoji sequence", ErrInvalid)
			}
		case unicode.Is(unicode.Cf, r):
			return fmt.Errorf("%w: nickname contains an invisible formatting character (U+%04X)", ErrInvalid, r)
		}
		if r != variationSelector16 {
			prev = r
		}
	}
	return nil
}

const (
	zeroWidthJoiner     = '\u200d'
	variationSelector16 = '\ufe0f'
)

// pictograph reports whether r can be part of an emoji ZWJ sequence: a
// symbol (So, which holds the emoji) or anything in the supplementary
// symbol planes' emoji blocks (U+1F000 and up, skin tones included).
func pictograph(r rune) bool {
	return r >= 0x1F000 && r <= 0x1FAFF || r != utf8.RuneError && unicode.Is(unicode.So, r)
}

// publicHost reports whether an avatar URL's host (without brackets or
// port) may be published to other users' devices: see Validate.
func publicHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return publicAddr(a)
	}
	if strings.ContainsAny(host, ":%[]") {
		return false // an IPv6 literal netip refuses (zone, garbage)
	}
	labels := strings.Split(host, ".")
	last := labels[len(labels)-1]
	if len(labels) == 1 || numericLabel(last) {
		return false // single label (intranet name) or a numeric form resolvers read as IPv4
	}
	for _, suffix := range []string{"localhost", "local", "internal", "home.arpa", "localdomain"} {
		if host == suffix || strings.HasSuffix(host, "."+suffix) {
			return false
		}
	}
	return true
}

// numericLabel reports whether a host's last label is a number (decimal,
// octal or 0x-hex), which makes resolvers read the host as an IPv4 address.
func numericLabel(l string) bool {
	if l == "" {
		return false
	}
	if len(l) > 2 && (l[:2] == "0x") {
		l = l[2:]
		return strings.Trim(l, "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

// cgnat is the shared address space of RFC 6598.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.Zone() != "" || a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() || cgnat.Contains(a) {
		return false
	}
	if a.Is4() && a.As4()[0] == 0 { // 0.0.0.0/8, "this network"
		return false
	}
	return true
}

// item is a profiles table item.
type item struct {
	OpenID string `dynamodbav:"openid"`
	Profile
}

// Config configures a Store.
type Config struct {
	// Table is the profiles table name (required).
	Table string
	// OpTimeout bounds each operation; 0 means DefaultOpTimeout.
	OpTimeout time.Duration
	// Now is the clock for UpdatedAt; nil means time.Now.
	Now func() time.Time
}

// Store reads and writes profiles. It is safe for concurrent use.
type Store struct {
	db      *dynamodb.Client
	table   string
	timeout time.Duration
	now     func() time.Time
}

// New returns a Store on client. It does no I/O.
func New(client *dynamodb.Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("profile: nil DynamoDB client")
	}
	if cfg.Table == "" {
		return nil, errors.New("profile: empty table name")
	}
	if cfg.OpTimeout < 0 {
		return nil, errors.New("profile: negative OpTimeout")
	}
	s := &Store{db: client, table: cfg.Table, timeout: cfg.OpTimeout, now: cfg.Now}
	if s.timeout == 0 {
		s.timeout = DefaultOpTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

func key(openid string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrOpenID: &types.AttributeValueMemberS{Value: openid}}
}

// Get returns openid's profile; a user without one gets the zero Profile and
// no error. Store failures are classified by dynamoclient.Wrap: those that
// may pass wrap session.ErrUnavailable, the others (a missing table, denied
// access) do not.
func (s *Store) Get(ctx context.Context, openid string) (Profile, error) {
	if openid == "" {
		return Profile{}, errors.New("profile: get: empty openid")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(openid),
		ConsistentRead: aws.Bool(true), // read-your-writes after a PUT
	})
	if err != nil {
		return Profile{}, dynamoclient.Wrap("profile: get", err)
	}
	if len(out.Item) == 0 {
		return Profile{}, nil
	}
	var it item
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Profile{}, fmt.Errorf("profile: get: malformed item: %w", err)
	}
	if it.UpdatedAt != nil {
		t := it.UpdatedAt.UTC()
		it.UpdatedAt = &t
	}
	return it.Profile, nil
}

// DeleteUserData deletes openid's profile: its part of an account deletion
// (account.DataDeleter; docs/design.md §8.6). A missing profile is not an
// error. The table is keyed by openid alone (one app per profile table).
func (s *Store) DeleteUserData(ctx context.Context, _ string, openid string) error {
	if openid == "" {
		return errors.New("profile: delete: empty openid")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key(openid)}); err != nil {
		return fmt.Errorf("profile: delete: %w", err)
	}
	return nil
}

// Put validates p, replaces openid's profile with it (UpdatedAt set to now)
// and returns what was stored. Invalid profiles wrap ErrInvalid; store
// failures are classified as in Get.
func (s *Store) Put(ctx context.Context, openid string, p Profile) (Profile, error) {
	if openid == "" {
		return Profile{}, errors.New("profile: put: empty openid")
	}
	if err := p.Validate(); err != nil {
		return Profile{}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	p.UpdatedAt = &now
	av, err := attributevalue.MarshalMap(item{OpenID: openid, Profile: p})
	if err != nil {
		return Profile{}, fmt.Errorf("profile: put: marshal: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: av}); err != nil {
		return Profile{}, dynamoclient.Wrap("profile: put", err)
	}
	return p, nil
}
