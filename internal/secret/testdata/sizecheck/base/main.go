// Command base is the size baseline: a Lambda linking only
// aws-sdk-go-v2/config and service/dynamodb (see secret.TestBinarySizeBudget).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func main() {
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		panic(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	lambda.Start(func(ctx context.Context) error {
		_, err := db.GetItem(ctx, &dynamodb.GetItemInput{})
		return err
	})
}
