package raftnode

import (
	"encoding/binary"
	"fmt"

	"github.com/raftlock/raftlock/lock"
)

// envelopeVersion is the format version of the raftnode envelope that wraps
// every lock command in an entry: version byte, proposing node ID and
// request ID (8 bytes each, big endian), then the lock command's own
// versioned encoding.
const envelopeVersion = 1

const envelopeHeader = 1 + 8 + 8

func encodeEnvelope(node, req uint64, cmd *lock.Command) []byte {
	body := lock.Encode(cmd)
	b := make([]byte, envelopeHeader, envelopeHeader+len(body))
	b[0] = envelopeVersion
	binary.BigEndian.PutUint64(b[1:], node)
	binary.BigEndian.PutUint64(b[9:], req)
	return append(b, body...)
}

func decodeEnvelope(b []byte) (node, req uint64, cmd *lock.Command, err error) {
	if len(b) < envelopeHeader {
		return 0, 0, nil, fmt.Errorf("decode entry: %d bytes, shorter than the envelope header: %w", len(b), lock.ErrCorrupt)
	}
	if b[0] != envelopeVersion {
		return 0, 0, nil, fmt.Errorf("decode entry: envelope version %d: %w", b[0], lock.ErrUnknownVersion)
	}
	node = binary.BigEndian.Uint64(b[1:])
	req = binary.BigEndian.Uint64(b[9:])
	cmd, err = lock.Decode(b[envelopeHeader:])
	if err != nil {
		return 0, 0, nil, fmt.Errorf("decode entry: %w", err)
	}
	return node, req, cmd, nil
}
