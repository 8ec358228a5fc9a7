//go:build noopencl

package gpu

// Built with noopencl: no OpenCL loader is linked and every engine runs on
// the CPU.

// ListDevices reports that this binary was built without OpenCL.
func ListDevices() ([]DeviceInfo, error) { return nil, ErrNoOpenCL }

type device struct {
	info    DeviceInfo
	coopWhy string
}

func openDevice(DeviceInfo, Options) (*device, error) { return nil, ErrNoOpenCL }

func (d *device) selfTest() error { return ErrNoOpenCL }

func (d *device) close() {}

func (d *device) hashBatch([][]byte, [][32]byte) error { return ErrNoOpenCL }

func (d *device) decodeBatch([]Block, []int) ([]int, error) { return nil, ErrNoOpenCL }

func (d *device) encodeBatch([]EncBlock, []int, bool) ([]int, error) { return nil, ErrNoOpenCL }

func (d *device) batchBytes() int { return 0 }
