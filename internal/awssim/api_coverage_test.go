package awssim

import (
	"reflect"
	"testing"

	"github.com/deploybot/deploybot/internal/awsapi"
)

// TestEveryDeploybotOperationIsSimulated: each method of the awsapi
// interfaces (what deploybot calls) has a handler, so no code path of
// deploybot meets "not simulated" in tests or the demo.
func TestEveryDeploybotOperationIsSimulated(t *testing.T) {
	t.Parallel()
	apis := []any{
		(*awsapi.ECSAPI)(nil), (*awsapi.IAMAPI)(nil), (*awsapi.LogsAPI)(nil), (*awsapi.SecretsAPI)(nil),
		(*awsapi.ServiceDiscoveryAPI)(nil), (*awsapi.AutoScalingAPI)(nil), (*awsapi.STSAPI)(nil), (*awsapi.SSMAPI)(nil),
		(*awsapi.SQSAPI)(nil), (*awsapi.EventBridgeAPI)(nil),
	}
	handlersMu.RLock()
	defer handlersMu.RUnlock()
	var missing []string
	for _, api := range apis {
		it := reflect.TypeOf(api).Elem()
		for i := 0; i < it.NumMethod(); i++ {
			m := it.Method(i)
			in := m.Type.In(1) // (ctx, *XInput, ...optFns)
			if _, ok := handlers[in]; !ok {
				missing = append(missing, it.Name()+"."+m.Name)
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("operations without a simulated handler: %v", missing)
	}
}
