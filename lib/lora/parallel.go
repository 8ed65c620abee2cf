package lora

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/distributed"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/shard"
	"github.com/pkg/errors"
)

// tensorParallel places every variable of m's store — base weights and the adapter a — over a
// mesh of n devices on shard.ModelAxis, as shard.TensorParallel lays the family out, and returns
// the mesh for the training and evaluation graphs (XLA's partitioner then derives the
// computation's sharding, inserting one all-reduce after each row-parallel projection).
//
// The adapter's gradients come back to the host whole (they are small: 104M parameters for
// LLaMA-2-70B at r 8), where AdamW updates them as in the single-device run; the frozen base
// weights, which do not fit one device, stay split.
func tensorParallel(m *models.Model, a *Adapter, n int) (*distributed.DeviceMesh, error) {
	if have := m.Backend.NumDevices(); have < n {
		return nil, errors.Errorf("finetune: tensor parallelism over %d devices needs a backend with %d devices; %s has %d (GPUs: GOMLX_BACKEND=xla:cuda in a build with -tags xla)",
			n, n, m.Backend.Name(), have)
	}
	if err := canPartition(m.Backend, n); err != nil {
		return nil, err
	}
	lay, err := shard.TensorParallel(m.Config, n, &shard.Adapter{Modules: a.Modules, Rank: a.Config.R})
	if err != nil {
		return nil, errors.WithMessage(err, "finetune: tensor-parallel layout")
	}
	mesh, err := distributed.NewDeviceMesh([]int{n}, []string{shard.ModelAxis})
	if err != nil {
		return nil, errors.WithMessage(err, "finetune: device mesh")
	}
	specs, err := lay.Specs(mesh)
	if err != nil {
		return nil, errors.WithMessage(err, "finetune: tensor-parallel layout")
	}
	for v := range m.Store.IterVariables() {
		name := models.HFName(v.Path())
		spec, ok := specs[name]
		if !ok {
			return nil, errors.Errorf("finetune: tensor-parallel layout has no placement for variable %s", name)
		}
		if err := v.SetShardingSpec(spec); err != nil {
			return nil, errors.WithMessagef(err, "finetune: placing %s", name)
		}
	}
	return mesh, nil
}

// canPartition asks the backend, before any graph is built, whether it can compile a computation
// partitioned over n devices (XLA can; GoMLX's Go backend cannot, even over one device): a graph
// whose builder refuses panics inside GoMLX, so the question is asked of a throwaway builder.
func canPartition(b compute.Backend, n int) error {
	mesh, err := distributed.NewDeviceMesh([]int{n}, []string{shard.ModelAxis})
	if err != nil {
		return errors.WithMessage(err, "finetune: device mesh")
	}
	if err := b.Builder("llmpruner_partition_probe").DistributedAutoSharding(mesh.ToBackendsMesh()); err != nil {
		return errors.Errorf("finetune: tensor parallelism over %d devices: backend %s cannot partition a computation over devices (XLA can: GOMLX_BACKEND=xla:cuda in a build with -tags xla)",
			n, b.Name())
	}
	return nil
}
