package dynamoclient_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/devstack/dynalite/dynalitetest"
	"github.com/wxsession/wxsession/internal/dynamoclient"
)

// BenchmarkGetItem is the authorizer's one read (a consistent GetItem of a
// session item) through a client from New, against dynalite. Its CPU
// profile shows the SDK's client-side cost per operation:
//
//	go test -run '^$' -bench GetItem -cpuprofile /tmp/getitem.out ./dynamoclient/
func BenchmarkGetItem(b *testing.B) {
	srv := dynalitetest.NewTestServer(b)
	ctx := context.Background()
	c, _, err := dynamoclient.New(ctx, getenv(map[string]string{config.VarDynamoDBEndpoint: srv.Endpoint, "AWS_ACCESS_KEY_ID": ""}))
	if err != nil {
		b.Fatal(err)
	}
	table := dynalitetest.Tables(b, c, "SessionsTable")["SessionsTable"] // waits until ACTIVE
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	key := map[string]types.AttributeValue{"sid": s("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")}
	item := map[string]types.AttributeValue{
		"sid": key["sid"], "openid": s("oBenchOpenID0123456789abcd"), "appid": s("wx0123456789abcdef"),
		"created_at": &types.AttributeValueMemberN{Value: "1700000000"}, "expires_at": &types.AttributeValueMemberN{Value: "4102444800"},
	}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		b.Fatal(err)
	}
	in := &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		out, err := c.GetItem(ctx, in)
		if err != nil || out.Item == nil {
			b.Fatalf("GetItem: %v (item %v)", err, out)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is this process's user+system CPU time (dynalite, a child, is
// not included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
