package keyring

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/oauthkit/oauthkit/tokencache"
)

// An entry is kept in one keychain item, the head, named by the cache key.
// If its encoding (tokencache.Encode, a JSON object) fits in MaxValueSize
// bytes, the head holds it as is. Otherwise the encoding is gzip-compressed
// and base64-encoded, the text is cut into chunks of at most MaxValueSize
// bytes stored as items "<key>#<slot><i>" (i = 1…N), and the head holds
// manifestPrefix followed by a JSON manifest.
//
// The chunks of an entry live in one of two slots, "a" and "b". A Store
// writes its chunks into the slot the current head does not use, then
// replaces the head, then deletes the chunks of the old slot: until the head
// is replaced, the previous entry stays whole, so a failed Store leaves it
// intact.
const manifestPrefix = "oauthkit-chunked:"

// manifest describes a chunked entry.
type manifest struct {
	V        int    `json:"v"`      // 1
	Slot     string `json:"slot"`   // "a" or "b"
	Chunks   int    `json:"chunks"` // N ≥ 1
	Len      int    `json:"len"`    // length of the joined chunk text
	SHA256   string `json:"sha256"` // hex SHA-256 of the joined chunk text
	Encoding string `json:"enc"`    // "gzip+base64"
}

const encodingGzipBase64 = "gzip+base64"

func chunkName(key, slot string, i int) string {
	return key + "#" + slot + strconv.Itoa(i)
}

func otherSlot(s string) string {
	if s == "a" {
		return "b"
	}
	return "a"
}

// maxChunks bounds N for a chunk size: enough for the largest entry
// tokencache accepts even if gzip cannot compress it.
func maxChunks(size int) int {
	return (2*tokencache.MaxEncodedSize)/size + 2
}

// split compresses an encoded entry and cuts it into chunks of at most size
// bytes, returning them and the manifest (without slot) describing them.
func split(b []byte, size int) ([]string, manifest, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, manifest{}, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, manifest{}, err
	}
	if err := zw.Close(); err != nil {
		return nil, manifest{}, err
	}
	text := base64.StdEncoding.EncodeToString(buf.Bytes())
	var chunks []string
	for len(text) > 0 {
		n := min(size, len(text))
		chunks = append(chunks, text[:n])
		text = text[n:]
	}
	joined := strings.Join(chunks, "")
	sum := sha256.Sum256([]byte(joined))
	m := manifest{
		V:        1,
		Chunks:   len(chunks),
		Len:      len(joined),
		SHA256:   hex.EncodeToString(sum[:]),
		Encoding: encodingGzipBase64,
	}
	return chunks, m, nil
}

func (m manifest) head() string {
	b, _ := json.Marshal(m) // a struct of strings and ints cannot fail
	return manifestPrefix + string(b)
}

// parseManifest parses a head value that starts with manifestPrefix. Its
// errors wrap tokencache.ErrCorrupt.
func parseManifest(head string, size int) (manifest, error) {
	var m manifest
	body, ok := strings.CutPrefix(head, manifestPrefix)
	if !ok {
		return m, fmt.Errorf("%w: not a chunk manifest", tokencache.ErrCorrupt)
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return m, fmt.Errorf("%w: unreadable chunk manifest", tokencache.ErrCorrupt)
	}
	switch {
	case m.V != 1:
		return m, fmt.Errorf("%w: unsupported chunk manifest version", tokencache.ErrCorrupt)
	case m.Slot != "a" && m.Slot != "b":
		return m, fmt.Errorf("%w: bad chunk slot", tokencache.ErrCorrupt)
	case m.Chunks < 1 || m.Chunks > maxChunks(size):
		return m, fmt.Errorf("%w: bad chunk count %d", tokencache.ErrCorrupt, m.Chunks)
	case m.Len < 1 || m.Len > m.Chunks*size:
		return m, fmt.Errorf("%w: bad chunked length", tokencache.ErrCorrupt)
	case m.Encoding != encodingGzipBase64:
		return m, fmt.Errorf("%w: unsupported chunk encoding", tokencache.ErrCorrupt)
	case len(m.SHA256) != 2*sha256.Size:
		return m, fmt.Errorf("%w: bad chunk checksum", tokencache.ErrCorrupt)
	}
	return m, nil
}

// errTorn reports chunks that do not match their manifest: missing, or
// with another checksum. A concurrent Store in another process can cause
// it, so Load reads again before calling the entry corrupt.
type errTorn struct{ reason string }

func (e errTorn) Error() string { return "chunks do not match their manifest: " + e.reason }

// join checks the chunk text against m and decompresses it.
func join(chunks []string, m manifest) ([]byte, error) {
	text := strings.Join(chunks, "")
	if len(text) != m.Len {
		return nil, errTorn{"length differs"}
	}
	sum := sha256.Sum256([]byte(text))
	if hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, errTorn{"checksum differs"}
	}
	z, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("%w: chunk text is not base64", tokencache.ErrCorrupt)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("%w: chunk data is not gzip", tokencache.ErrCorrupt)
	}
	b, err := io.ReadAll(io.LimitReader(zr, tokencache.MaxEncodedSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: chunk data does not decompress", tokencache.ErrCorrupt)
	}
	return b, nil
}
