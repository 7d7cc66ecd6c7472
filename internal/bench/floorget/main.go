// Command floorget is the benchmark's second reference Lambda: the floor
// (internal/bench/floor) plus one reachable DynamoDB operation (GetItem) in its
// handler.
//
// The floor calls no DynamoDB operation, so the linker drops the SDK's whole
// per-operation pipeline (middleware stack, endpoint rules, auth scheme
// resolution, retries, signing, the operation's (de)serializers): about
// 1.6 MB on linux/arm64. Every wxsession function calls at least one
// operation and so links that pipeline; `make bench` reports the sizes
// against both references so the difference between "the SDK's operation
// machinery" and "wxsession's own code" is visible. The GetItem is only
// reached for an event {"get": true}, which the benchmark never sends.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatalf("floorget: load aws config: %v", err)
	}
	client := dynamodb.NewFromConfig(cfg)
	lambda.Start(func(ctx context.Context, ev map[string]any) (map[string]any, error) {
		if ev["get"] != true {
			return map[string]any{"ok": client != nil}, nil
		}
		_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("floorget")})
		return map[string]any{"ok": err == nil}, err
	})
}
