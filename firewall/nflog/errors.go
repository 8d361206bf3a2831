package nflog

import "errors"

// ErrGroupInUse is wrapped by the error Open returns when another socket
// has already bound the NFLOG group in that network namespace.
var ErrGroupInUse = errors.New("NFLOG group is in use by another socket")
