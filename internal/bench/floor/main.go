// Command floor is the benchmark's reference Lambda: built exactly like the wxsession
// functions, its only work is config.LoadDefaultConfig + dynamodb.NewFromConfig at init and
// a trivial handler. `make bench` compares every function's binary size and cold start with
// it, in the same run.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatalf("floor: load aws config: %v", err)
	}
	client := dynamodb.NewFromConfig(cfg)
	lambda.Start(func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		return map[string]any{"ok": client != nil}, nil
	})
}
